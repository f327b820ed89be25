"""Background training: the per-project job runner with one running and one pending job
(runner.py), the same rules kept in Redis for RQ workers (redisrunner.py), trainings in a child
process (childtrainer.py), the training job itself (trainer.py), which recipe it trains
(recipe.py), whether its version serves (promotion.py) and `retrain_every` (counter.py)."""
