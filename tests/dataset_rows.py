"""Small data files in the real shapes of the standard data sets, with a right and a wrong solution per code row
(shared by the preset unit tests, the sandbox checks of their test specs, and the one-step training test).

Shapes, as published: GSM8K (openai/gsm8k, main), MATH (hendrycks competition_math) and MATH-500
(HuggingFaceH4/MATH-500), HumanEval (openai_humaneval) and sanitized MBPP (taken from benchmarks/data and put back
into their original columns), APPS (codeparrot/apps: `input_output` a JSON string), CodeContests
(deepmind/code_contests, parquet with struct test columns), LiveCodeBench (code_generation_lite: JSON-string
public tests, base64 zlib pickled private tests, JSON-string metadata).
"""
from __future__ import annotations

import base64
import json
import pickle
import zlib
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

BENCH = Path(__file__).resolve().parents[1] / "benchmarks" / "data"


def write_jsonl(path: Path | str, rows: list[dict]) -> str:
    Path(path).write_text("".join(json.dumps(row) + "\n" for row in rows))
    return str(path)


def gsm8k_rows() -> list[dict]:
    return [
        {"question": "Natalia sold clips to 48 of her friends in April, and then she sold half as many clips in May. "
                     "How many clips did Natalia sell altogether in April and May?",
         "answer": "Natalia sold 48/2 = <<48/2=24>>24 clips in May.\nNatalia sold 48+24 = <<48+24=72>>72 clips "
                   "altogether in April and May.\n#### 72"},
        {"question": "A shop sold 1,200 pens on Monday and 300 more on Tuesday than on Monday. How many pens in all?",
         "answer": "Tuesday: 1,200 + 300 = <<1200+300=1500>>1,500.\nIn all: 1,200 + 1,500 = 2,700.\n#### 2,700"},
        {"question": "Weng earns $12 an hour for babysitting. Yesterday, she just did 50 minutes of babysitting. "
                     "How much did she earn?",
         "answer": "Weng earns 12/60 = $<<12/60=0.2>>0.2 per minute.\nWorking 50 minutes, she earned 0.2 x 50 = "
                   "$<<0.2*50=10>>10.\n#### 10"},
        {"question": "A row without a final answer line.", "answer": "It is 5."},
    ]


def math_rows() -> list[dict]:
    return [  # competition_math
        {"problem": "If $x^2+y^2=1$, what is the largest possible value of $|x|+|y|$?", "level": "Level 5",
         "type": "Algebra", "solution": "By Cauchy-Schwarz, $(|x|+|y|)^2 \\le 2$, so the answer is "
                                        "$\\boxed{\\sqrt{2}}$."},
        {"problem": "Compute $\\dbinom{8}{4}$.", "level": "Level 2", "type": "Counting & Probability",
         "solution": "$\\dbinom{8}{4} = \\frac{8!}{4!4!} = \\boxed{70}$."},
        {"problem": "What is $\\frac{1}{2}+\\frac{1}{3}$?", "level": "Level 1", "type": "Prealgebra",
         "solution": "We get $\\frac{3}{6}+\\frac{2}{6}=\\boxed{\\frac{5}{6}}$."},
        {"problem": "A problem whose solution boxes nothing.", "level": "Level 1", "type": "Algebra",
         "solution": "The answer is 3."},
    ]


def math500_rows() -> list[dict]:
    return [{"problem": "Convert the point $(0,3)$ in rectangular coordinates to polar coordinates.",
             "solution": "We have $r = 3$ and $\\theta = \\frac{\\pi}{2}$, so $\\boxed{\\left( 3, \\frac{\\pi}{2} "
                         "\\right)}$.", "answer": "\\left( 3, \\frac{\\pi}{2} \\right)", "subject": "Precalculus",
             "level": 2, "unique_id": "test/precalculus/807.json"}]


def bench_rows(name: str, n: int) -> list[dict]:
    return [json.loads(line) for line in (BENCH / name).read_text().splitlines()[:n]]


def humaneval_rows() -> list[dict]:
    """openai_humaneval's columns, from benchmarks/data (plus our right/wrong bodies)."""
    return [{"task_id": r["task_id"], "prompt": r["prompt"], "canonical_solution": r["canonical"],
             "test": r["tests"]["test"], "entry_point": r["tests"]["entry_point"]} for r in bench_rows(
                 "code_humaneval.jsonl", 3)]


def mbpp_rows() -> list[dict]:
    """Sanitized MBPP's columns (source_file, task_id, prompt, code, test_imports, test_list)."""
    rows = []
    for r in bench_rows("code_mbpp.jsonl", 3):
        lines = r["tests"]["test"].splitlines()
        imports = [x for x in lines if x.startswith(("import ", "from "))]
        rows.append({"source_file": "Benchmark Questions Verification V2.ipynb", "task_id": int(r["task_id"][5:]),
                     "prompt": r["prompt"], "code": r["canonical"], "test_imports": imports,
                     "test_list": [x for x in lines if x not in imports]})
    return rows


APPS_SUM = "a, b = map(int, input().split())\nprint(a + b)\n"
APPS_DIV = "a, b = map(int, input().split())\nprint(a / b)\n"
APPS_CALL = "def add_all(xs):\n    return sum(xs)\n"
APPS_LEETCODE = ("class Solution:\n    def twoSum(self, nums, target):\n        seen = {}\n"
                 "        for i, x in enumerate(nums):\n            if target - x in seen:\n"
                 "                return [seen[target - x], i]\n            seen[x] = i\n")


def apps_rows() -> list[dict]:
    def row(pid, question, io, starter=""):
        return {"problem_id": pid, "question": question, "solutions": json.dumps(["..."]),
                "input_output": json.dumps(io) if io is not None else "", "difficulty": "interview",
                "url": f"https://codeforces.com/problemset/problem/{pid}/A", "starter_code": starter}

    return [
        row(0, "Print the sum of two integers a and b.",
            {"inputs": ["1 2\n", "10 -3\n"], "outputs": ["3\n", "7\n"]}),
        row(1, "Print a / b.", {"inputs": ["1 3\n", "2 3\n"], "outputs": ["0.333333\n", "0.6666667\n"]}),
        row(2, "Return the sum of the list xs.", {"fn_name": "add_all", "inputs": [[[1, 2, 3]], [[]]],
                                                  "outputs": [[6], [0]]}, "def add_all(xs):\n\t"),
        row(3, "Given nums and target, return the indices of the two numbers that add up to target.",
            {"fn_name": "twoSum", "inputs": [[[2, 7, 11, 15], 9], [[3, 2, 4], 6]], "outputs": [[[0, 1]], [[1, 2]]]},
            "class Solution:\n    def twoSum(self, nums: List[int], target: int) -> List[int]:\n        "),
        row(4, "A problem whose tests were lost.", None),
    ]


APPS_RIGHT = {0: APPS_SUM, 1: APPS_DIV, 2: APPS_CALL, 3: APPS_LEETCODE}


CC_YES = "n = int(input())\nprint('YES' if n % 2 == 0 else 'no')\n"
CC_HALF = "n = int(input())\nprint(n / 2)\n"


def code_contests_table() -> pa.Table:
    def tests(pairs):
        return {"input": [i for i, _ in pairs], "output": [o for _, o in pairs]}

    rows = [
        {"name": "1_A. Even or odd", "description": "Print YES if n is even, else NO (any letter case).",
         "public_tests": tests([("4\n", "YES\n")]), "private_tests": tests([("7\n", "NO\n")]),
         "generated_tests": tests([("10\n", "yes\n"), ("1\n", "no\n")]), "source": 2, "difficulty": 7,
         "solutions": {"language": [3], "solution": [CC_YES]},
         "incorrect_solutions": {"language": [], "solution": []}, "cf_contest_id": 1, "cf_index": "A",
         "cf_points": 500.0, "cf_rating": 800, "cf_tags": ["math"], "is_description_translated": False,
         "untranslated_description": "", "time_limit": {"seconds": 1, "nanos": 0}, "memory_limit_bytes": 256000000,
         "input_file": "", "output_file": ""},
        {"name": "2_B. Half", "description": "Print n / 2; answers within 1e-5 are accepted.",
         "public_tests": tests([("3\n", "1.500000\n")]), "private_tests": tests([("5\n", "2.5000001\n")]),
         "generated_tests": tests([]), "source": 2, "difficulty": 8,
         "solutions": {"language": [3], "solution": [CC_HALF]},
         "incorrect_solutions": {"language": [], "solution": []}, "cf_contest_id": 2, "cf_index": "B",
         "cf_points": 1000.0, "cf_rating": 900, "cf_tags": [], "is_description_translated": False,
         "untranslated_description": "", "time_limit": None, "memory_limit_bytes": 256000000,
         "input_file": "", "output_file": ""},
    ]
    return pa.Table.from_pylist(rows)


CC_RIGHT = {"1_A. Even or odd": CC_YES, "2_B. Half": CC_HALF}


def lcb_private(cases: list[dict]) -> str:
    """code_generation_lite's encoding of private test cases."""
    return base64.b64encode(zlib.compress(pickle.dumps(json.dumps(cases)))).decode()


LCB_STDIN = "n = int(input())\nprint(n * 1.5)\n"
LCB_FUNCTIONAL = ("class Solution:\n    def maxSum(self, nums: list, k: int) -> int:\n"
                  "        return sum(sorted(nums)[-k:])\n")


def livecodebench_rows() -> list[dict]:
    def row(qid, content, public, private, starter="", func=None, platform="atcoder"):
        return {"question_title": f"Problem {qid}", "question_content": content, "platform": platform,
                "question_id": qid, "contest_id": "abc300", "contest_date": "2023-04-29T00:00:00",
                "starter_code": starter, "difficulty": "easy", "public_test_cases": json.dumps(public),
                "private_test_cases": lcb_private(private),
                "metadata": json.dumps({"func_name": func} if func else {})}

    return [
        row("abc300_a", "Print n * 1.5.", [{"input": "2\n", "output": "3.0\n", "testtype": "stdin"}],
            [{"input": "3\n", "output": "4.50\n", "testtype": "stdin"}]),
        row("3312", "Return the largest sum of k elements of nums.",
            [{"input": "[1, 5, 3]\n2", "output": "8", "testtype": "functional"}],
            [{"input": "[4]\n1", "output": "4", "testtype": "functional"}],
            "class Solution:\n    def maxSum(self, nums: List[int], k: int) -> int:\n        ", "maxSum", "leetcode"),
    ]


LCB_RIGHT = {"abc300_a": LCB_STDIN, "3312": LCB_FUNCTIONAL}
WRONG = "print('no idea')\ndef add_all(*a):\n    return None\n"


def preset_files(root: Path) -> dict[str, dict]:
    """preset name -> {"params": task params} for a small file of each preset in `root`, each with held-out rows."""
    root.mkdir(parents=True, exist_ok=True)
    humaneval, mbpp = humaneval_rows(), mbpp_rows()
    contests = code_contests_table()
    pq.write_table(contests.slice(0, 1), root / "code_contests_train.parquet")
    pq.write_table(contests.slice(1), root / "code_contests_valid.parquet")
    return {
        "gsm8k": {"path": write_jsonl(root / "gsm8k_train.jsonl", gsm8k_rows()[1:]),
                  "eval_path": write_jsonl(root / "gsm8k_test.jsonl", gsm8k_rows()[:1])},
        "math": {"path": write_jsonl(root / "math_train.jsonl", math_rows()),
                 "eval_path": write_jsonl(root / "math500.jsonl", math500_rows())},
        "humaneval": {"path": write_jsonl(root / "humaneval_a.jsonl", humaneval[:2]),
                      "eval_path": write_jsonl(root / "humaneval_b.jsonl", humaneval[2:])},
        "mbpp": {"path": write_jsonl(root / "mbpp_a.jsonl", mbpp[:2]),
                 "eval_path": write_jsonl(root / "mbpp_b.jsonl", mbpp[2:])},
        "apps": {"path": write_jsonl(root / "apps_train.jsonl", apps_rows()[1:]),
                 "eval_path": write_jsonl(root / "apps_test.jsonl", apps_rows()[:1])},
        "code_contests": {"path": str(root / "code_contests_train.parquet"),
                          "eval_path": str(root / "code_contests_valid.parquet")},
        "livecodebench": {"path": write_jsonl(root / "lcb_train.jsonl", livecodebench_rows()[1:]),
                          "eval_path": write_jsonl(root / "lcb_test.jsonl", livecodebench_rows()[:1])},
    }
