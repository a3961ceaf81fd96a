"""The DICOM network side: access control, presentation contexts, DIMSE handlers."""
