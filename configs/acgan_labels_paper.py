# The label ACGAN as published: the defaults of Son et al.'s public code (MIDL 2021,
# github.com/semantic-retina/semantic-retina-generation: train_acgan.py,
# src/options/acgan/train.py, src/models/acgan/, src/losses/), written for LabelACGAN.
# Use it to reproduce their generator; configs/acgan_labels.py is our default, which
# departs from it where the list at the end says.
#
#   python tools/train.py configs/acgan_labels_paper.py --cfg-options data_root=...
#
# Reproduced (their code -> here)
# * 256 x 256 maps of 9 channels: their default lesions RETINA OD MA HE EX SE NV IRMA plus
#   background = our BG, RET and the 7 lesion_classes below (prepare the data with
#   `--classes OD MA HE EX SE NV IRMA`; IDRiD has no NV / IRMA masks, which stay retina
#   there, as in theirs). Batch 64, noise 128.
# * Generator: z times a 128-d grade embedding (embed_mode='multiply'), linear to
#   512 x 4 x 4 with no norm or activation (fc_norm=False), six [upsample x2, conv 3x3,
#   BN, ReLU] blocks 512 -> 256 -> ... -> 16 -> C (min_channels = C = 9: set it to the
#   channel count if you change lesion_classes), conv 3x3 C -> C, softmax. No
#   conditional BN, zero padding.
# * Discriminator: six [conv 3x3 stride 2, BN, LeakyReLU 0.2] blocks of 8, 16, 32, 64,
#   128, 128 channels, linear real/fake and grade heads; no spectral norm, no minibatch
#   standard deviation. Their weight init: convs N(0, 0.02), BN scales N(1, 0.02).
# * Losses: discriminator hinge, relu(1 - D(x)) + relu(1 + D(G(z))); generator -D(G(z)).
#   Auxiliary grade loss (cross-entropy; their NLLLoss on a log-softmax) for the
#   discriminator on real AND generated maps, weight 1 each (aux_on_fake_d=True); none
#   for the generator (aux_weight_g=0: their generator step computes the grade logits
#   and never uses them, so no loss of the generator depends on the grade).
# * Label smoothing: none (real_target=1.0). Their `--label_smoothing` flag (on by
#   default) sets `valid_val = 0.9`, a variable nothing reads; their hinge loss takes no
#   target. It had no effect, under the hinge loss or any other.
# * One discriminator update, then two generator updates, per batch (n_critic=1,
#   n_gen=2: GANStepRatioHook). Adam, G lr 5e-4, D lr 1e-4, betas (0.5, 0.999) for both,
#   constant (no schedule).
# * Gradient clipping of the discriminator: clip_grad_norm_(D.parameters(), 0.01), the
#   L2 norm of all its gradients together, at every update (`--clip_gradient`, on by
#   default) = mmengine's clip_grad=dict(max_norm=0.01, norm_type=2). Under Adam this
#   hardly limits the step (Adam divides by the running RMS of the gradients); it makes
#   every update's gradient the same size in Adam's moment estimates.
# * ADA: p starts at 0 and moves by 0.01 after every iteration, up if the mean sign of
#   D(real) in that iteration's batch exceeds 0.6, down if below (AdaHook interval=1,
#   ada_kimg = batch / 10: 64 images / 6400 = 0.01). Augmentations, each applied with
#   probability p to every map the discriminator sees (real and generated, in both
#   updates): a random multiple of 90 degrees; a rotation by any angle, an integer
#   translation of up to half the side and a scaling in 0.8..1.2; Gaussian noise.
# * Training maps flipped horizontally and vertically at random; no disc alignment, no
#   mirroring of samples, no EMA, discriminator sees the softmax maps as they are.
# * Length: 1000 epochs of their training split at batch 64 with the last partial batch
#   dropped. Their train.csv is 80 % of FGADR (less a deny list) and IDRiD (and
#   e-ophtha in the latest split_datasets.py); for IDRiD + FGADR, 80 % of 81 + 1842 =
#   1538 maps, 24 iterations per epoch, 24,000 iterations. Set paper_train_maps to your
#   training split's size.
#
# Not reproduced (what LabelACGAN / AdaAugment / AdaHook cannot express)
# * Their p is capped at 0.85; AdaHook caps it at 1. It matters only if the
#   discriminator overfits enough to push p past 0.85.
# * Their rotation, translation and scaling are one RandomAffine, applied together with
#   probability p and scale uniform in 0.8..1.2; AdaAugment gates each with p on its own
#   and draws the scale log2-normal (std 0.17, the spread of theirs).
# * Their noise is N(0, p^2) added with probability p and left unnormalised; AdaAugment's
#   std is |N(0, noise_std)| (0.5 here: mean 0.4) and the map is renormalised to
#   probabilities. Their affine fill puts the mass outside the frame on channel 0, which
#   in their layout is retina (their comment says background); ours puts it on BG.
# * Conv biases start at 0 (theirs at PyTorch's default); their seed (213) and data order.
# * Validation: they computed FID of coloured maps against FGADR every 50 epochs; the val
#   loop here runs LabelMapMetric (grade accuracy, discs per map, lesion load).
#
# Label smoothing (loss_config.real_target = s; fundus_plugins/models/label_gan/losses.py)
# Our real term is s * L_real(D(x)) + (1 - s) * L_fake(D(x)) for every loss type. For
# BCE that is exactly BCE with target s, s * softplus(-D) + (1 - s) * softplus(D),
# minimised at D = logit(s) (2.2 for s = 0.9): confidence is capped. For hinge it is
# 0.9 * relu(1 - D) + 0.1 * relu(1 + D), i.e. 1 - 0.8 D for -1 < D < 1, 0.1 (1 + D) above
# 1 and 0.9 (1 - D) below -1: still minimised at the margin D = 1 (so not "a target of
# 0.9"), with the push on real maps inside the margin cut from 1 to 0.8 and real maps
# beyond the margin pulled back with slope 0.1, which plain hinge leaves alone. Here
# s = 1: the real term is relu(1 - D(x)), as in their code.
#
# Where our default (configs/acgan_labels.py) departs, and why (here -> there)
# * lr G / D 5e-4 / 1e-4, betas (0.5, 0.999), constant -> 2e-4 / 4e-4 (TTUR), betas
#   (0, 0.9), linear decay over the second half: the usual setting of spectral-norm
#   hinge GANs (SAGAN, BigGAN); theirs has the generator learn 5x faster than the
#   discriminator on top of its 2 updates per batch.
# * D gradient clip at L2 norm 0.01 -> none: spectral norm bounds the discriminator.
# * Label smoothing none (their flag did nothing) -> s = 0.9, acting as described above.
# * Auxiliary loss of D on real + generated maps -> real maps only: trained on generated
#   maps too, D and G agree on a private grade code and every grade collapses to one map
#   (measured on the phantom, docs/label_acgan.md).
# * Auxiliary loss of G none -> weight 1: without it no loss of the generator depends on
#   the grade, so nothing teaches it to draw the grade it is given.
# * ADA p +-0.01 every iteration (0 to 0.85 in 85 iterations) -> StyleGAN2-ADA's rule
#   every 4 iterations with ada_kimg 100 (0 to 1 in ~1560 iterations at batch 64, 15x
#   slower): p follows the trend of r_t rather than each batch's noise. Operations:
#   rot90, affine with shifts to +-50 %, noise of std p -> StyleGAN2-ADA's geometric set
#   (shifts to +-12.5 %) and noise of std ~0.05.
# * Discriminator 3x3 + BN, 8-128 channels -> 4x4, spectral norm, 64-512 channels,
#   minibatch standard deviation (which lets it see a collapsed batch).
# * Generator z * embedding, plain linear -> concatenation, BN + ReLU, conditional BN,
#   reflect padding.
# * No EMA -> EMA of the generator (momentum 0.005), which samples are drawn from.
# * Random horizontal + vertical flips -> optic disc aligned right, samples mirrored at
#   random (measured: far fewer maps with two half discs); no vertical flips.
# * Discriminator sees the softmax maps -> at temperature 0.25 (measured: fewer disc
#   specks); mode-seeking term none -> 0.02 (measured: against within-grade collapse).
# * Lesion classes OD MA HE EX SE NV IRMA -> OD MA HE EX SE; length 1000 epochs (24,000
#   iterations) -> 20,000 iterations.
_base_ = ['./_base_/gan_runtime.py']
work_dir = 'work_dirs/acgan_labels_paper'

lesion_classes = ['OD', 'MA', 'HE', 'EX', 'SE', 'NV', 'IRMA']
data_root = 'data/idrid_fgadr'
label_size = 256
batch_size = 64
num_label_channels = len(lesion_classes) + 2  # with BG and RET

model = dict(
    type='LabelACGAN',
    classes=lesion_classes,  # label channels: BG, RET, then these
    num_classes=5,  # DR grades 0-4
    generator=dict(
        type='LabelMapGenerator', out_size=label_size, noise_size=128, embed_dim=128,
        embed_mode='multiply', fc_norm=False, base_channels=512,
        min_channels=num_label_channels, conditional_bn=False, padding_mode='zeros',
        init_cfg=[dict(type='Normal', layer='Conv2d', mean=0.0, std=0.02, bias=0.0),
                  dict(type='Normal', layer='BatchNorm2d', mean=1.0, std=0.02, bias=0.0)]),
    discriminator=dict(
        type='LabelMapDiscriminator', in_size=label_size, base_channels=8, max_channels=128,
        kernel_size=3, batch_norm=True, spectral_norm=False, minibatch_std_group=0,
        init_cfg=[dict(type='Normal', layer='Conv2d', mean=0.0, std=0.02, bias=0.0),
                  dict(type='Normal', layer='BatchNorm2d', mean=1.0, std=0.02, bias=0.0)]),
    loss_config=dict(adv_loss='hinge', real_target=1.0, aux_weight_d=1.0, aux_weight_g=0.0,
                     aux_on_fake_d=True, mode_seeking_weight=0.0, entropy_weight=0.0),
    sample_flip=False,
    disc_temperature=1.0,
    augment=dict(kind='label', background_channel=0, p=0.0,
                 rotate90_prob=1.0,
                 rotate_prob=1.0, rotate_max=1.0,       # any angle
                 xint_prob=1.0, xint_max=0.5,           # integer shift up to half the side
                 scale_prob=1.0, scale_std=0.17,        # ~ uniform 0.8..1.2
                 noise_prob=1.0, noise_std=0.5,
                 xflip_prob=0.0, aniso_prob=0.0, xfrac_prob=0.0, cutout_prob=0.0))

label_pipeline = [
    dict(type='LoadFundusPair', with_image=False),
    dict(type='ResizeFundus', size=label_size),
    dict(type='RandomFlipFundus', prob=0.5, directions=('horizontal', 'vertical')),
    dict(type='LabelToOneHot'),
    dict(type='PackFundusGenInputs', inputs=dict(img='label_onehot')),
]
train_dataloader = dict(
    batch_size=batch_size, num_workers=4, persistent_workers=True, drop_last=True,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    dataset=dict(type='FundusDataset', data_root=data_root, classes=lesion_classes,
                 split='train', ungraded='error',
                 with_images=False, pipeline=label_pipeline))
# The val loop generates maps; its dataloader only gives the batch size and metainfo.
val_dataloader = dict(
    batch_size=batch_size, num_workers=0,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(type='FundusDataset', data_root=data_root, classes=lesion_classes,
                 split='test', ungraded='skip',
                 with_images=False, pipeline=label_pipeline))
test_dataloader = val_dataloader

# Mixed precision: 'auto' = bf16 autocast on a CUDA device that supports it, fp32
# elsewhere (a CPU run is unchanged); 'fp32' / 'bf16' / 'fp16' force one
# (PrecisionOptimWrapper, fundus_plugins/engine/precision.py): --cfg-options precision=fp32.
precision = 'auto'
optim_wrapper = dict(
    constructor='MultiOptimWrapperConstructor',
    generator=dict(type='PrecisionOptimWrapper', precision=precision,
                   optimizer=dict(type='Adam', lr=5e-4, betas=(0.5, 0.999))),
    discriminator=dict(type='PrecisionOptimWrapper', precision=precision,
                       optimizer=dict(type='Adam', lr=1e-4, betas=(0.5, 0.999)),
                       clip_grad=dict(max_norm=0.01, norm_type=2)))

paper_epochs = 1000
paper_train_maps = 1538  # 80 % of IDRiD (81) + FGADR (1842); set your training split's
iters_per_epoch = paper_train_maps // batch_size
max_iters = paper_epochs * iters_per_epoch  # 24,000
# Their samples and FID every 50 epochs.
train_cfg = dict(type='FastResumeIterBasedTrainLoop', max_iters=max_iters, val_begin=1,
                 val_interval=50 * iters_per_epoch)
val_cfg = dict(type='MultiValLoop')
test_cfg = dict(type='MultiTestLoop')
# No EMA: sample from the trained generator.
label_metrics = [dict(type='LabelMapMetric', real_root=data_root, classes=lesion_classes,
                      fake_nums=500, sample_model='orig')]
val_evaluator = dict(type='Evaluator', metrics=label_metrics)
test_evaluator = val_evaluator

custom_hooks = [
    dict(type='GANStepRatioHook', generator_steps=2, discriminator_steps=1),
    dict(type='AdaHook', target=0.6, interval=1, ada_kimg=batch_size / 10),
    dict(type='LabelGridHook', interval=50 * iters_per_epoch, num_per_grade=8,
         sample_model='orig'),
]
