"""Local features: keypoints that survive crops, frames and overlays, and the geometry that
verifies a match and says where one picture lies in the other (`lookalike[local]`, OpenCV).

    features.py    ORB keypoints and descriptors at a fixed working size, compact for storage
    verify.py      matching and a RANSAC-fitted transform: verified or not, region, scale, mirror
"""
