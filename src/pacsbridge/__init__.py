"""PacsBridge: clinical photos and videos to DICOM, filed in the patient's record."""

__version__ = "0.1.0"
