# unet_fundus_real.py scored "as published": Son et al.'s measure as their code computes it,
# so that the paper measure (paper_*) is comparable with the numbers of their Table 1(c):
# at 512 x 512 with the labels resized nearest-neighbour (score_size=512), and with their
# code's loss of one class (class0_bug=True: after the background channel is dropped,
# argmax gives index 0 both to "no lesion" and to the first of their scored classes in
# their fixed order RET, OD, MA, HE, EX, SE, NV, IRMA). Their scoring code scores the
# lesions it is given (by default no optic disc); here the disc is reported on its own,
# so the pooled classes are MA, HE, EX, SE and the class lost is MA. (With the disc pooled
# among the lesions, separate_classes=(), it would be OD.) The other measures are
# unaffected. The default configs leave both off.
_base_ = ['./unet_fundus_real.py']
work_dir = 'work_dirs/unet_fundus_real_as_published'

val_evaluator = [dict(type='PaperLesionMetric', class0_bug=True, score_size=512),
                 dict(type='LesionImageMetric'), dict(type='LesionPixelMetric')]
test_evaluator = val_evaluator
