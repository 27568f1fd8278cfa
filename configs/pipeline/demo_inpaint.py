# The main job on the phantom with both ways of making synthetic images, side by side
# (issue 14): whole-image synthesis (SPADE, the paper) and lesions painted into real
# healthy images (the inpainting translator, after Feng et al., MICCAI 2024). Both use the
# same sampled label maps at the same synthetic counts; the report's Table 1(c) shows the
# two beside each other, with label consistency and the seam measure of the inpainting.
#
#   python tools/run_pipeline.py configs/pipeline/demo_inpaint.py
#
# Everything else is configs/pipeline/demo.py. The healthy images are the phantom's
# grade-0 training images; the inpainting translator trains on all real training pairs
# (configs/inpaint_fundus_demo.py, 600 iterations: about 6 minutes on 2 CPU cores).
_base_ = ['./demo.py']
work_dir = 'work_dirs/pipeline_demo_inpaint'

images = dict(mode=['full', 'inpaint'],
              inpaint=dict(config='configs/inpaint_fundus_demo.py', max_iters=600, seed=0))
