"""isp-node: a DICOM network node that plans MRI brain examinations from localizers."""

__version__ = "0.1.0"
