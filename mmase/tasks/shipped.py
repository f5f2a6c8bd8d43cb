"""The six tasks mmase ships, declared the way a config declares a task."""

#: Declarations of PASCAL-Context's five tasks and NYUD's depth.
SHIPPED_TASKS = (
    dict(type='SegmentationTask', name='semseg', field='sem_seg'),
    # images without any person part do not count (the public human-parts meter)
    dict(type='SegmentationTask', name='human_parts',
         meter=dict(type='SegmentationMeter', skip_no_foreground=True)),
    dict(type='BinaryTask', name='sal', main_metric='maxF', meter=dict(type='SaliencyMeter')),
    dict(type='NormalsTask', name='normals'),
    dict(type='BinaryTask', name='edge', main_metric='odsF', meter=dict(type='EdgeMeter')),
    dict(type='DepthTask', name='depth'),
)
