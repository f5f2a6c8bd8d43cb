# Single-task (STL) reference of ASE's ablations (Li et al., arXiv 2510.00570, Sec. 4: Δm against
# a ViT STL model, edges scored by the balanced BCE loss, lower is better, instead of odsF), for the
# ASE protocol (224x224, 40 epochs). The paper publishes no STL ViT numbers, so the values are not
# filled in and Δm is off; `main_metrics` is set all the same, so the ablation configs report the
# paper's metrics (edge/loss) in their summary:
#   val_evaluator = dict(type='MultiTaskMetric', protocol='astmt',
#                        main_metrics={{_base_.main_metrics}},
#                        stl_reference={{_base_.stl_reference}})
# To switch Δm on, train and test the single-task ViT-B/16 configs of the ASE protocol (one per
# task, the same backbone, heads and schedule), then replace `stl_reference = None` by
#   stl_reference = dict(source='<your runs>', metrics=main_metrics, semseg=..., normals=...,
#                        human_parts=..., sal=..., edge=...)
# with their `<task>/<metric>` values from metrics_test.json (edge: `edge/loss`).
main_metrics = dict(semseg='mIoU', normals='mErr', human_parts='mIoU', sal='mIoU', edge='loss')
stl_reference = None
