"""Unit tests: pure logic and local tools (cjpeg, jpegtran, dcmtk), no peers."""
