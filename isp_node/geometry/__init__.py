"""Plane geometry in DICOM patient space (LPS, mm): the plane catalogue and its metrics."""

from isp_node.geometry.catalogue import PLANE_KEYS, PRESCRIPTIONS, plane_catalogue
from isp_node.geometry.planes import Plane, centre_distance_mm, normal_angle_deg, transform_plane

__all__ = ["PLANE_KEYS", "PRESCRIPTIONS", "Plane", "centre_distance_mm", "normal_angle_deg",
           "plane_catalogue", "transform_plane"]
