#!/usr/bin/env bash
# Install the real peers the integration tests run against, from Debian's packages:
# Orthanc with its worklist and DICOMweb plugins, DCMTK, dicom3tools (dciodvfy),
# FFmpeg (ffprobe), libjpeg-turbo's jpegtran (lossless JPEG rotation), exiftool
# (tests write real-world metadata with it) and PostgreSQL (the scale-out store;
# the tests run their own throwaway cluster).
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends \
    orthanc orthanc-dicomweb dcmtk dicom3tools ffmpeg libjpeg-turbo-progs \
    libimage-exiftool-perl postgresql >/dev/null
# The orthanc package starts a system service on 4242/8042; the tests start their
# own Orthanc on free ports and never use it.
