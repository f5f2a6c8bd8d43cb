# Single-task (STL) reference of Δm for the toy dataset: main metric per task, measured with
# the configs in configs/toy/stl_* (same backbone and schedule). Update after re-running them.
stl_reference = dict(semseg=50.0, human_parts=30.0, sal=70.0, normals=30.0, edge=50.0)
