"""Rotation matrices for head poses and slice obliquity (patient LPS axes)."""

import numpy as np


def axis_angle(axis: np.ndarray, angle_deg: float) -> np.ndarray:
    """Rotation by `angle_deg` about `axis` (Rodrigues' formula)."""
    axis = np.asarray(axis, dtype=float)
    axis = axis / np.linalg.norm(axis)
    k = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
    angle = np.radians(angle_deg)
    return np.eye(3) + np.sin(angle) * k + (1 - np.cos(angle)) * k @ k


def head_rotation(pitch_deg: float, roll_deg: float, yaw_deg: float) -> np.ndarray:
    """Pitch (nodding, about L-R), then roll (tilting, about A-P), then yaw (turning, about S-I)."""
    return (axis_angle([0, 0, 1], yaw_deg) @ axis_angle([0, 1, 0], roll_deg)
            @ axis_angle([1, 0, 0], pitch_deg))


def rigid(rotation: np.ndarray, translation: np.ndarray) -> np.ndarray:
    """4x4 homogeneous matrix of a rotation followed by a translation."""
    matrix = np.eye(4)
    matrix[:3, :3] = rotation
    matrix[:3, 3] = translation
    return matrix
