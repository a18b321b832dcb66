"""Compare's defaults and hints, without imports: `lstmlab compare --help` reads them cheaply."""

ALPHA = 0.05  # significance level of the verdict (--alpha)
EFFECT = 0.05  # the change of test RMSE seeds_needed plans for (--effect)
MARGIN = 0.05  # "equivalent" within ±5 % (--margin)
TRAIN_SEEDS = "lstmlab train -m 'variant=glob(*)' trainer.seed=1,2,3"
