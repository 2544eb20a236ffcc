"""DICOM: building datasets from pixel data and a capture context."""
