"""The dlib backend's geometry on a synthetic video of known poses: the five points land on the template.
(The face_alignment backend's tests are in ``test_faces_fan.py``.)"""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from skimage import data

from pipeline.core import video
from pipeline import faces

# (scale, degrees, centre x, centre y) of the reference crop in each 640x360 frame
POSES = [(1.0, 0.0, 320, 180), (1.3, 8.0, 250, 170), (0.9, -10.0, 400, 190), (1.5, 4.0, 330, 175),
         (1.15, -5.0, 200, 200), (1.25, 10.0, 440, 180)]


@pytest.fixture(scope="module")
def reference():
    """A DeepfakeBench crop of the astronaut, its 68 landmarks (dlib), and where its 5 points land."""
    dlib = faces.make_backend("dlib", upsample=1)
    face, _ = dlib.largest_face(np.ascontiguousarray(data.astronaut()))
    crop = faces.align_crop(data.astronaut(), face.landmarks)
    again, _ = dlib.largest_face(crop)
    p5 = faces.align_points(again.landmarks)
    return crop, again.landmarks, faces.transform_points(faces.alignment_matrix(p5), p5)


def pose_matrix(scale, degrees, cx, cy):
    m = cv2.getRotationMatrix2D((128, 128), degrees, scale)
    m[:, 2] += (cx - 128, cy - 128)
    return m


@pytest.fixture(scope="module")
def known_video(reference, tmp_path_factory):
    crop = reference[0]
    frames = [cv2.warpAffine(crop, pose_matrix(*p), (640, 360), borderValue=(90, 90, 90)) for p in POSES]
    path = video.write_video(tmp_path_factory.mktemp("geo") / "known.mp4", frames)
    return {"dataset": "geo", "video_id": "known", "path": str(path), "frame_count": len(POSES)}


def landed(records):
    """Where each stored crop's 5 points land in the crop (the fit applied to its points)."""
    out = {}
    for rec, png in records:
        assert rec["status"] == "ok", rec
        p5 = np.array(rec["points5"])
        out[rec["frame_idx"]] = faces.transform_points(faces.alignment_matrix(p5), p5)
    return out


def test_dlib_points_land_on_the_template_positions(reference, known_video):
    target = reference[2]
    recs = faces.extract_video(known_video, faces.make_backend("dlib"), faces.CropSettings(num_frames=len(POSES)))
    got = landed(recs)
    assert sorted(got) == list(range(len(POSES)))
    err = np.array([np.linalg.norm(p - target, axis=1).max() for p in got.values()])
    assert err.max() < 2.0, err
