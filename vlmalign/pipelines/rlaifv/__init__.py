"""RLAIF-V (arXiv 2405.17220): divide-and-conquer AI feedback on the policy's own samples, iterated DPO.

One round: sample n responses per instruction (T = 0.7) -> split each into atomic claims -> ask a
labeler VLM one yes/no question per claim -> score = -(rejected claims) -> pairs with score gap >= 1,
at most 2 per instruction, length-balanced -> DPO with a precomputed reference -> the trained model
is the next round's policy. ``vlmalign-rlaifv`` runs K rounds and resumes at the stage it stopped in.
"""
