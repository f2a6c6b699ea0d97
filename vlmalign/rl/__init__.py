"""Online RL and reward models (issue 21): the reward model's training module, rewards, rollouts and the online
trainer. A layer beside ``vlmalign/module.py``: it uses models, reference strategies, objectives' maths, data and
the shapes evaluation's parser, and nothing below imports it."""
