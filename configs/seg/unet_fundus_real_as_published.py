# unet_fundus_real.py scored "as published": Son et al.'s measure with their code's loss
# of the first lesion class (after the background channel is dropped, argmax gives index 0
# both to "no lesion" and to that class, here MA), so the paper measure (paper_*) is
# comparable with the numbers of their Table 1(c). The other measures are unaffected.
# The default configs leave the bug off.
_base_ = ['./unet_fundus_real.py']
work_dir = 'work_dirs/unet_fundus_real_as_published'

val_evaluator = [dict(type='PaperLesionMetric', class0_bug=True),
                 dict(type='LesionImageMetric'), dict(type='LesionPixelMetric')]
test_evaluator = val_evaluator
