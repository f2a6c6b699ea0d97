"""Public hallucination benchmarks on their own file formats: POPE, CHAIR on COCO, AMBER, MMHal-Bench.

One module per benchmark (loader with row validation, pure scorer, question list), ``runner.py`` (batched,
resumable generation with any backbone) and ``cli.py`` (``vlmalign-eval``). docs/benchmarks.md has the
file layouts, commands and what differs from the official scripts.
"""

from vlmalign.eval.benchmarks.amber import AmberBenchmark, amber_scores
from vlmalign.eval.benchmarks.chair_coco import ChairCocoBenchmark, chair_scores
from vlmalign.eval.benchmarks.common import Benchmark, Question
from vlmalign.eval.benchmarks.mmhal import MMHalBenchmark, mmhal_scores, parse_rating
from vlmalign.eval.benchmarks.pope import PopeBenchmark, pope_answer_is_yes, pope_scores

__all__ = [
    "AmberBenchmark",
    "Benchmark",
    "ChairCocoBenchmark",
    "MMHalBenchmark",
    "PopeBenchmark",
    "Question",
    "amber_scores",
    "chair_scores",
    "mmhal_scores",
    "parse_rating",
    "pope_answer_is_yes",
    "pope_scores",
]
