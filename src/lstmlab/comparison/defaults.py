"""Compare's defaults and hints, without imports: `lstmlab compare --help` reads them cheaply."""

ALPHA = 0.05  # significance level of the verdict (--alpha)
TRAIN_SEEDS = "lstmlab train -m 'variant=glob(*)' trainer.seed=1,2,3"
