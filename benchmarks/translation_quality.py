"""Cased sacreBLEU and wall time of the translation recipe on ~30k pairs.

There is no 30k-pair corpus offline, so `synthetic_pairs` makes one: cased
English sentences from templates (people's names, cities, numbers, prices,
times, quotations, questions) and a rule-based "target" language that
translates them word by word with its own lexicon, puts adjectives after
nouns, marks plurals with a suffix, writes prices with a decimal comma and
keeps names and digits. The recipe learns the reverse direction (that
language to English), so the score is sacreBLEU on cased, detokenized
English. The numbers are synthetic: they show the recipe end to end at a
realistic size and compare tokenizers side by side, not what a model
reaches on natural language.

    python benchmarks/translation_quality.py --pairs 30000 \\
        --tokenizers sentencepiece wordpiece --epochs 4

writes `corpus.tsv` and one recipe run per tokenizer under `--work-dir`,
then prints a table (BLEU, its signature, training and total seconds) and
writes it as JSON (`--output`).
"""

import argparse
import json
import os
import platform
import random
import subprocess
import sys
import time

RECIPE = os.path.join(
    os.path.dirname(__file__), "..", "recipes", "translate.py"
)

NAMES = (
    "Ana Bruno Carla Diogo Elena Fabio Greta Hugo Ines Joao Kiara Luis Marta "
    "Nuno Olga Pedro Rita Sofia Tiago Vera Bob Alice Chen Dmitri Emma Farid "
    "Hana Ivan Julia Kenji"
).split()
# English -> target-language words.
CITIES = {
    "Lisbon": "Lisboa",
    "London": "Londres",
    "Paris": "Parisa",
    "Rome": "Roma",
    "Berlin": "Berlim",
    "Madrid": "Madride",
    "Tokyo": "Toquio",
    "Cairo": "Cairu",
}
NOUNS = {
    "apple": "maca",
    "book": "livro",
    "car": "carro",
    "dog": "cao",
    "cat": "gato",
    "house": "casa",
    "letter": "carta",
    "bicycle": "bicicla",
    "ticket": "bilhete",
    "hat": "chapeu",
    "table": "mesa",
    "window": "janela",
    "song": "cancao",
    "train": "comboio",
    "flower": "flor",
    "bottle": "garrafa",
    "shirt": "camisa",
    "key": "chave",
    "painting": "quadro",
    "boat": "barco",
}
ADJECTIVES = {
    "red": "vermelho",
    "blue": "azul",
    "old": "velho",
    "new": "novo",
    "small": "pequeno",
    "big": "grande",
    "green": "verde",
    "cheap": "barato",
    "beautiful": "bonito",
    "strange": "estranho",
    "heavy": "pesado",
    "quiet": "calmo",
}
VERBS = {  # past tense
    "bought": "comprou",
    "sold": "vendeu",
    "found": "achou",
    "lost": "perdeu",
    "painted": "pintou",
    "carried": "levou",
    "wanted": "quis",
    "saw": "viu",
    "washed": "lavou",
    "opened": "abriu",
}
DAYS = {
    "Monday": "Segunda",
    "Tuesday": "Terca",
    "Wednesday": "Quarta",
    "Thursday": "Quinta",
    "Friday": "Sexta",
    "Saturday": "Sabado",
    "Sunday": "Domingo",
}
GREETINGS = {"Hello": "Ola", "Thank you": "Obrigado", "Good night": "Boa noite"}


def _noun_phrase(rng, count):
    """`(english, target)` of `count` adjective-noun(s): `3 red apples`."""
    noun, target_noun = rng.choice(list(NOUNS.items()))
    adjective, target_adjective = rng.choice(list(ADJECTIVES.items()))
    if count == 1:
        article = "an" if adjective[0] in "aeiou" else "a"
        return (
            f"{article} {adjective} {noun}",
            f"um {target_noun} {target_adjective}",
        )
    plural = noun + ("es" if noun.endswith(("sh", "ch", "s")) else "s")
    return (
        f"{count} {adjective} {plural}",
        f"{count} {target_noun}zi {target_adjective}zi",
    )


def _sentence(rng):
    """One `(target_language, english)` pair from a random template."""
    name, other = rng.sample(NAMES, 2)
    city, target_city = rng.choice(list(CITIES.items()))
    verb, target_verb = rng.choice(list(VERBS.items()))
    day, target_day = rng.choice(list(DAYS.items()))
    count = rng.choice([1, 1, 2, 3, 4, 5, 7, 12, 20, 36, 100])
    english_things, target_things = _noun_phrase(rng, count)
    template = rng.randrange(6)
    if template == 0:
        english = f"{name} {verb} {english_things} in {city}."
        target = f"{name} {target_verb} {target_things} em {target_city}."
    elif template == 1:
        english = f"On {day}, {name} and {other} {verb} {english_things}."
        target = (
            f"Na {target_day}, {name} e {other} {target_verb} {target_things}."
        )
    elif template == 2:
        euros, cents = rng.randrange(1, 500), rng.randrange(100)
        english = f"{name} paid ${euros}.{cents:02d} for {english_things}."
        target = f"{name} pagou {euros},{cents:02d} $ por {target_things}."
    elif template == 3:
        hour, minute = rng.randrange(24), rng.choice([0, 15, 30, 45])
        english = f"Did {name} see {english_things} at {hour}:{minute:02d}?"
        target = f"Ka {name} viu {target_things} as {hour}h{minute:02d}?"
    elif template == 4:
        greeting, target_greeting = rng.choice(list(GREETINGS.items()))
        english = f'"{greeting}, {other}!" said {name} in {city}.'
        target = f'"{target_greeting}, {other}!" disse {name} em {target_city}.'
    else:
        english = f"{english_things.capitalize()} from {city} {verb} {name}."
        target = (
            f"{target_things[0].upper()}{target_things[1:]} de {target_city} "
            f"{target_verb} {name}."
        )
    return target, english


def synthetic_pairs(num_pairs, seed=0):
    """`num_pairs` distinct `(source, target)` pairs, deterministic by seed.

    Example:

    >>> synthetic_pairs(1, seed=3)[0]  # doctest: +SKIP
    ('Na Terca, Ivan e Rita pintou 3 livrozi velhozi.',
     'On Tuesday, Ivan and Rita painted 3 old books.')
    """
    rng = random.Random(seed)
    pairs, seen = [], set()
    while len(pairs) < num_pairs:
        pair = _sentence(rng)
        if pair not in seen:
            seen.add(pair)
            pairs.append(pair)
    return pairs


def write_tsv(pairs, path):
    """Writes `source<TAB>target` lines (the recipe's `--data` format)."""
    with open(path, "w", encoding="utf-8") as file:
        for source, target in pairs:
            file.write(f"{source}\t{target}\n")


def run_recipe(tsv, output_dir, tokenizer, extra):
    """Runs the recipe once; returns its summary and wall seconds."""
    command = [
        sys.executable,
        RECIPE,
        "--data",
        tsv,
        "--tokenizer",
        tokenizer,
        "--output-dir",
        output_dir,
        "--restart",
        *extra,
    ]
    start = time.perf_counter()
    subprocess.run(command, check=True)
    wall = time.perf_counter() - start
    with open(os.path.join(output_dir, "summary.json"), encoding="utf-8") as f:
        return json.load(f), wall


def _cpu_name():
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as file:
            for line in file:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=30000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--tokenizers", nargs="+", default=["sentencepiece", "wordpiece"]
    )
    parser.add_argument("--work-dir", default="/tmp/translation_quality")
    parser.add_argument("--output", default=None, help="JSON results file")
    parser.add_argument(
        "recipe_args",
        nargs=argparse.REMAINDER,
        help="further recipe arguments, after `--` (e.g. -- --epochs 4)",
    )
    args = parser.parse_args(argv)
    extra = [a for a in args.recipe_args if a != "--"]
    os.makedirs(args.work_dir, exist_ok=True)
    tsv = os.path.join(args.work_dir, "corpus.tsv")
    write_tsv(synthetic_pairs(args.pairs, args.seed), tsv)
    results = []
    for tokenizer in args.tokenizers:
        output_dir = os.path.join(args.work_dir, tokenizer)
        summary, wall = run_recipe(tsv, output_dir, tokenizer, extra)
        results.append(
            {
                "tokenizer": tokenizer,
                "bleu": round(summary["bleu"], 2),
                "bleu_signature": summary["bleu_signature"],
                "epochs": summary.get("epochs"),
                "training_seconds": round(summary["training_seconds"], 1),
                "wall_seconds": round(wall, 1),
                "num_held_out": summary["num_held_out"],
            }
        )
    report = {
        "cpu": _cpu_name(),
        "cpus": os.cpu_count(),
        "pairs": args.pairs,
        "recipe_args": extra,
        "results": results,
    }
    print(json.dumps(report, indent=2))
    for row in results:
        print(
            f"{row['tokenizer']:>13}: BLEU {row['bleu']:6.2f} "
            f"({row['bleu_signature']}), {row['epochs']} epochs, "
            f"training {row['training_seconds']:.0f} s, "
            f"wall {row['wall_seconds']:.0f} s"
        )
    if args.output:
        with open(args.output, "w", encoding="utf-8") as file:
            json.dump(report, file, indent=2)
    return report


if __name__ == "__main__":
    main()
