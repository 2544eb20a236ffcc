"""Tests against real peers (Orthanc, DCMTK, dicom3tools) on 127.0.0.1."""
