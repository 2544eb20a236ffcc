"""DICOM: building datasets from pixel data and a capture context."""

from pydicom import config

# Strict when writing: a value that does not fit its VR is an error, never a
# warning that pydicom would log with the value (patient data) in it.
config.settings.writing_validation_mode = config.RAISE
