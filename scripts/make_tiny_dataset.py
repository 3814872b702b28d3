"""Write hessgpt/data/tiny_chat.jsonl: a small synthetic instruction dataset for the tiny model.

Like the seed model's synthetic set, every conversation comes from templates written for this
project: greetings, thanks, goodbyes, small talk, simple facts, short lists, simple explanations,
format-following tasks, short passages to summarise, word translations and two-turn memory. The
output is deterministic (fixed seed, no clock, no network): running the script again rewrites the
same bytes.

The facts and topics are chosen apart from the bench's questions, and a last pass drops any
conversation the contamination check flags against ``benchmarks/suites`` (13-gram overlap or an
exact prompt), so the tiny model is an honest baseline.

    python scripts/make_tiny_dataset.py [--out hessgpt/data/tiny_chat.jsonl] [--against benchmarks/suites]
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SEED = 20261122

NAMES = [
    "Alice",
    "Bruno",
    "Chloe",
    "David",
    "Emma",
    "Farid",
    "Grace",
    "Hugo",
    "Ines",
    "Jonas",
    "Kenji",
    "Lina",
    "Marco",
    "Nadia",
    "Omar",
    "Paula",
    "Quentin",
    "Rosa",
    "Samir",
    "Tara",
    "Ugo",
    "Vera",
    "Walid",
    "Yasmin",
    "Zoe",
    "Liam",
    "Maya",
    "Noah",
    "Elsa",
    "Ravi",
]

# ----------------------------------------------------------------------------- social turns

GREET_USER = [
    "Hi!",
    "Hey there!",
    "Hello, assistant.",
    "Hi, nice to see you.",
    "Hey!",
    "Hello again!",
    "Good afternoon!",
    "Hi, I have a question.",
    "Hello, can you help me?",
    "Hey, what's up?",
    "Hiya!",
    "Good day to you!",
    "Hello friend!",
    "Howdy!",
    "Hi, how is everything?",
]
GREET_BOT = [
    "Hello! How can I help you today?",
    "Hi there! What can I do for you?",
    "Hey! It's nice to hear from you. What would you like to talk about?",
    "Hello! I'm happy to help. What do you need?",
    "Hi! Ask me anything you like.",
    "Good to see you! How can I help?",
]
WELLBEING_USER = [
    "How are you doing?",
    "How is your day going?",
    "Are you well today?",
    "How do you feel?",
    "How's life?",
    "Is everything fine with you?",
]
WELLBEING_BOT = [
    "I'm doing well, thank you for asking! How about you?",
    "I'm fine, thanks! I hope your day is going well too.",
    "Everything is good here. Thanks for asking! How are you?",
    "I'm great, thank you! What can I do for you today?",
]
THANKS_USER = [
    "Thanks!",
    "Thank you!",
    "Thanks for the help.",
    "Thank you, that helps a lot.",
    "Many thanks!",
    "Great, thanks a lot.",
    "Thank you very much!",
    "That was helpful, thanks.",
    "I'm grateful for your help.",
    "Thanks, you're the best.",
]
THANKS_BOT = [
    "You're welcome! I'm glad I could help.",
    "My pleasure! Let me know if you need anything else.",
    "You're very welcome!",
    "Happy to help! Feel free to ask more questions.",
    "Anytime! I'm glad it was useful.",
]
BYE_USER = [
    "Bye!",
    "See you soon!",
    "Goodbye, and thanks.",
    "I'm off now, bye!",
    "Talk to you later!",
    "Have a good day, bye!",
    "See you tomorrow!",
    "Catch you later.",
]
BYE_BOT = [
    "Goodbye! Have a wonderful day.",
    "See you soon! Take care.",
    "Bye! It was nice talking with you.",
    "Take care, and come back anytime!",
]
FEELINGS = [
    ("happy", "That's wonderful to hear! What made you happy?"),
    ("sad", "I'm sorry you feel sad. Do you want to talk about it?"),
    ("bored", "Maybe you could read a book, take a walk or learn something new."),
    ("excited", "How exciting! What are you looking forward to?"),
    ("hungry", "Maybe it's time for a snack. Fruit or a sandwich are quick ideas."),
    ("sleepy", "It sounds like you need some rest. A good night's sleep helps a lot."),
    ("worried", "I'm sorry you feel worried. Talking about it can help. What is on your mind?"),
    ("proud", "You should be proud! Well done."),
]

# ----------------------------------------------------------------------------- facts

CAPITALS = [
    ("Spain", "Madrid"),
    ("Germany", "Berlin"),
    ("Portugal", "Lisbon"),
    ("Norway", "Oslo"),
    ("Sweden", "Stockholm"),
    ("Finland", "Helsinki"),
    ("Poland", "Warsaw"),
    ("Greece", "Athens"),
    ("Ireland", "Dublin"),
    ("Austria", "Vienna"),
    ("Peru", "Lima"),
    ("Chile", "Santiago"),
    ("Argentina", "Buenos Aires"),
    ("Mexico", "Mexico City"),
    ("India", "New Delhi"),
    ("China", "Beijing"),
    ("Thailand", "Bangkok"),
    ("Vietnam", "Hanoi"),
    ("Morocco", "Rabat"),
    ("Ghana", "Accra"),
    ("Senegal", "Dakar"),
    ("Hungary", "Budapest"),
    ("Denmark", "Copenhagen"),
    ("Belgium", "Brussels"),
    ("the Netherlands", "Amsterdam"),
    ("Switzerland", "Bern"),
    ("Cuba", "Havana"),
    ("Colombia", "Bogota"),
    ("Iceland", "Reykjavik"),
    ("South Korea", "Seoul"),
]
CAPITAL_Q = [
    "Which city is the capital of {c}?",
    "Tell me the capital of {c}.",
    "What city is {c}'s capital?",
    "Name the capital city of {c}.",
    "Do you know the capital of {c}?",
]
CAPITAL_A = ["The capital of {c} is {k}.", "{k} is the capital of {c}.", "It is {k}."]

ANIMALS = {  # name: (sound, home, legs, food)
    "dog": ("barks", "lives with people in houses", 4, "meat and dog food"),
    "cat": ("meows", "lives with people in houses", 4, "meat and fish"),
    "cow": ("moos", "lives on farms", 4, "grass"),
    "sheep": ("bleats", "lives on farms and hills", 4, "grass"),
    "duck": ("quacks", "lives near ponds and rivers", 2, "plants, seeds and insects"),
    "horse": ("neighs", "lives on farms and in fields", 4, "grass and hay"),
    "lion": ("roars", "lives on the savanna in Africa", 4, "other animals"),
    "frog": ("croaks", "lives near ponds", 4, "insects"),
    "owl": ("hoots", "lives in forests", 2, "mice and insects"),
    "pig": ("oinks", "lives on farms", 4, "almost anything"),
    "bee": ("buzzes", "lives in a hive", 6, "nectar and pollen"),
    "snake": ("hisses", "lives in many warm places", 0, "small animals"),
    "rooster": ("crows", "lives on farms", 2, "seeds and grain"),
    "wolf": ("howls", "lives in forests and mountains", 4, "other animals"),
    "goat": ("bleats", "lives on farms and in mountains", 4, "grass and leaves"),
}
COLOURS = [
    ("a ripe banana", "yellow"),
    ("grass", "green"),
    ("snow", "white"),
    ("coal", "black"),
    ("a ripe strawberry", "red"),
    ("an orange", "orange"),
    ("a lemon", "yellow"),
    ("a carrot", "orange"),
    ("a lime", "green"),
    ("milk", "white"),
    ("chocolate", "brown"),
    ("a plum", "purple"),
    ("a fire truck", "red"),
    ("a crow", "black"),
]
OPPOSITES = [
    ("hot", "cold"),
    ("big", "small"),
    ("fast", "slow"),
    ("happy", "sad"),
    ("light", "dark"),
    ("up", "down"),
    ("open", "closed"),
    ("early", "late"),
    ("full", "empty"),
    ("old", "new"),
    ("strong", "weak"),
    ("high", "low"),
    ("loud", "quiet"),
    ("easy", "hard"),
    ("wet", "dry"),
    ("rich", "poor"),
    ("long", "short"),
    ("clean", "dirty"),
]
JOBS = [
    ("baker", "bakes bread, cakes and pastries"),
    ("teacher", "helps students learn"),
    ("farmer", "grows crops and raises animals"),
    ("pilot", "flies aeroplanes"),
    ("doctor", "helps sick people get better"),
    ("firefighter", "puts out fires and rescues people"),
    ("chef", "cooks meals in a kitchen"),
    ("gardener", "looks after plants and gardens"),
    ("librarian", "looks after books and helps people find them"),
    ("plumber", "fixes pipes and taps"),
    ("carpenter", "builds things out of wood"),
    ("dentist", "takes care of people's teeth"),
    ("mechanic", "repairs cars and engines"),
    ("postman", "delivers letters and parcels"),
]
MONTHS = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
]

# ----------------------------------------------------------------------------- lists

POOLS = {
    "fruits": [
        "apple",
        "pear",
        "banana",
        "grape",
        "cherry",
        "peach",
        "mango",
        "plum",
        "melon",
        "kiwi",
        "apricot",
    ],
    "vegetables": [
        "carrot",
        "potato",
        "onion",
        "pea",
        "leek",
        "cabbage",
        "spinach",
        "lettuce",
        "bean",
        "pumpkin",
    ],
    "pets": ["dog", "cat", "rabbit", "hamster", "parrot", "goldfish", "guinea pig", "turtle"],
    "farm animals": ["cow", "pig", "sheep", "goat", "horse", "chicken", "duck", "donkey"],
    "colours": ["red", "blue", "green", "yellow", "purple", "orange", "pink", "brown", "grey", "white"],
    "sports": ["football", "tennis", "swimming", "basketball", "cycling", "running", "skiing", "volleyball"],
    "musical instruments": ["piano", "guitar", "violin", "drum", "flute", "trumpet", "harp", "cello"],
    "things in a kitchen": ["spoon", "fork", "knife", "plate", "pan", "kettle", "oven", "cup", "bowl"],
    "school subjects": ["maths", "history", "geography", "science", "music", "art", "English", "sport"],
    "hobbies": ["reading", "painting", "gardening", "cooking", "hiking", "drawing", "knitting", "dancing"],
    "vehicles": ["car", "bus", "train", "bicycle", "truck", "boat", "tram", "motorbike", "scooter"],
    "clothes": ["shirt", "coat", "hat", "scarf", "sock", "jacket", "dress", "skirt", "glove", "boot"],
    "tools": ["hammer", "saw", "screwdriver", "drill", "wrench", "ladder", "shovel", "tape measure"],
    "birds": ["sparrow", "eagle", "robin", "pigeon", "swan", "parrot", "owl", "penguin", "crow"],
    "things in a classroom": ["desk", "chair", "board", "pencil", "book", "ruler", "eraser", "map"],
}
LIST_Q_NUMBERED = [
    "Name {n} {cat}. Use a numbered list.",
    "Give me {n} {cat} as a numbered list.",
    "Can you list {n} {cat}? Number them.",
    "Write {n} {cat}, one per line, numbered.",
]
LIST_Q_BULLETS = [
    "Name {n} {cat} with bullet points.",
    "Give {n} {cat}, each on a line starting with a dash.",
    "List {n} {cat} using dashes.",
]
LIST_Q_PLAIN = ["Name {n} {cat}.", "Tell me {n} {cat}.", "What are {n} {cat}?"]

# ----------------------------------------------------------------------------- explanations

EXPLAIN = {
    "a bicycle": "A bicycle is a vehicle with two wheels that you move by pushing pedals with your feet. "
    "It is a cheap, quiet and healthy way to travel.",
    "a calendar": "A calendar is a chart of the days, weeks and months of a year. People use it to plan "
    "events and remember dates.",
    "a map": "A map is a drawing of a place seen from above. It shows roads, rivers, towns and other features "
    "so that people can find their way.",
    "a refrigerator": "A refrigerator is a kitchen appliance that keeps food cold. Cold slows down the growth "
    "of germs, so food stays fresh for longer.",
    "a thermometer": "A thermometer is a tool that measures temperature. It tells you how hot or cold "
    "something is, such as the air or your body.",
    "a clock": "A clock is a device that shows the time. Its hands or digits tell you the hour and the minutes.",
    "a bridge": "A bridge is a structure that lets people and vehicles cross over a river, a road or a valley.",
    "a museum": "A museum is a building where interesting objects, such as art or old tools, are kept and "
    "shown to visitors.",
    "a garden": "A garden is a piece of land where people grow flowers, vegetables or trees.",
    "a passport": "A passport is an official document that shows who you are and which country you come from. "
    "You need it to travel to many other countries.",
    "a dictionary": "A dictionary is a book or website that lists words in alphabetical order and explains "
    "what they mean.",
    "an umbrella": "An umbrella is a folding cover on a stick. You hold it over your head to stay dry in the rain.",
    "a compass": "A compass is a tool with a needle that always points north. It helps travellers find "
    "their direction.",
    "a recipe": "A recipe is a set of instructions that tells you how to cook a dish, with the ingredients "
    "and the steps.",
    "a habit": "A habit is something you do so often that you do it almost without thinking, like brushing "
    "your teeth every morning.",
    "a budget": "A budget is a plan for how you will spend and save your money over a period of time.",
    "a forest": "A forest is a large area covered with trees. Many animals and plants live there.",
    "a desert": "A desert is a very dry place where it almost never rains. Few plants can grow there.",
    "an island": "An island is a piece of land with water all around it.",
    "a river": "A river is a long stream of fresh water that flows across the land, usually into a lake "
    "or the sea.",
    "a lighthouse": "A lighthouse is a tall tower with a bright light at the top. It warns ships that they "
    "are close to rocks or the coast.",
    "a kite": "A kite is a light frame covered with cloth or paper. It flies in the wind while you hold its "
    "string.",
    "a pharmacy": "A pharmacy is a shop where you can buy medicine and get advice about it.",
    "a vote": "A vote is a way for a group of people to make a choice. Each person says what they prefer "
    "and the option with the most support wins.",
    "a neighbour": "A neighbour is a person who lives next to you or near you.",
    "a library card": "A library card lets you borrow books from a library and take them home for a while.",
    "a telescope": "A telescope is a tool that makes faraway things look closer. People use it to look at "
    "the stars and planets.",
    "a battery": "A battery stores energy and gives it out to power things like phones, toys and torches.",
    "a shadow": "A shadow is the dark shape that appears when an object blocks the light.",
    "an echo": "An echo is a sound that bounces off a wall or a mountain and comes back so you hear it again.",
    "a puzzle": "A puzzle is a game or problem that you solve by thinking carefully, like a jigsaw or a riddle.",
    "a seed": "A seed is the small part of a plant from which a new plant can grow.",
    "a nest": "A nest is a home that birds build from twigs, grass and leaves to lay their eggs in.",
    "a harbour": "A harbour is a sheltered area of water near the coast where boats and ships can stay safely.",
    "a marathon": "A marathon is a running race of about 42 kilometres.",
}
EXPLAIN_Q = [
    "What is {x}?",
    "Can you tell me what {x} is?",
    "Explain what {x} is in simple words.",
    "Describe {x} briefly.",
    "I don't know what {x} is. Can you explain?",
]
WHY = [
    (
        "Why do we brush our teeth?",
        "We brush our teeth to remove bits of food and germs. This keeps our "
        "teeth and gums healthy and stops holes from forming.",
    ),
    (
        "Why do people drink water?",
        "Our bodies need water to work well. Water keeps us cool, helps us "
        "digest food and carries nutrients around the body.",
    ),
    ("Why do we wear coats in winter?", "Coats keep our bodies warm when the air outside is cold."),
    (
        "Why do leaves fall in autumn?",
        "Many trees drop their leaves in autumn to save water and energy "
        "during the cold months. New leaves grow again in spring.",
    ),
    ("Why do birds build nests?", "Birds build nests to keep their eggs and chicks safe and warm."),
    (
        "Why should we wash our hands?",
        "Washing our hands with soap removes germs, so we are less likely "
        "to get sick or to pass illness to others.",
    ),
    (
        "Why do we need to exercise?",
        "Exercise makes our heart, muscles and bones stronger. It also helps us sleep well and feel happier.",
    ),
    (
        "Why do ice cubes melt?",
        "Ice cubes melt when the air around them is warmer than zero degrees. "
        "The heat turns the solid ice into liquid water.",
    ),
    (
        "Why do we have traffic lights?",
        "Traffic lights tell drivers and people on foot when to stop and "
        "when to go, so that everyone can cross roads safely.",
    ),
    ("Why do people read books?", "People read books to learn new things, to enjoy stories and to relax."),
    (
        "Why do cats purr?",
        "Cats often purr when they feel calm and happy, for example when someone strokes them.",
    ),
    (
        "Why do we save money?",
        "We save money so that we can pay for bigger things later and be ready for surprises.",
    ),
]

# ----------------------------------------------------------------------------- formats, passages, words

WORDS_FR = [
    ("cat", "chat"),
    ("dog", "chien"),
    ("house", "maison"),
    ("water", "eau"),
    ("bread", "pain"),
    ("apple", "pomme"),
    ("book", "livre"),
    ("car", "voiture"),
    ("tree", "arbre"),
    ("sun", "soleil"),
    ("moon", "lune"),
    ("school", "école"),
    ("friend", "ami"),
    ("red", "rouge"),
    ("green", "vert"),
    ("thank you", "merci"),
    ("hello", "bonjour"),
    ("good night", "bonne nuit"),
    ("cheese", "fromage"),
    ("milk", "lait"),
    ("window", "fenêtre"),
    ("door", "porte"),
    ("table", "table"),
    ("bird", "oiseau"),
]
SENTENCES = [
    "the children played in the park",
    "my brother likes green apples",
    "we will visit the museum",
    "the train leaves at noon",
    "she reads a book every night",
    "the baker opens his shop early",
    "our garden is full of flowers",
    "the river is very calm today",
    "he forgot his umbrella",
    "they painted the fence white",
]
PLACES = ["market", "library", "beach", "park", "bakery", "zoo", "museum", "station"]
ITEMS = ["apples", "bread", "a new book", "flowers", "a kite", "some cheese", "a map", "postcards"]
DAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]
WEATHER = ["sunny", "rainy", "windy", "cloudy", "cold", "warm"]


def chat(*turns: str) -> dict:
    roles = ["user" if i % 2 == 0 else "assistant" for i in range(len(turns))]
    return {"messages": [{"role": role, "content": text} for role, text in zip(roles, turns, strict=True)]}


def numbered(items: list[str]) -> str:
    return "\n".join(f"{i}. {item[0].upper() + item[1:]}" for i, item in enumerate(items, 1))


def bulleted(items: list[str]) -> str:
    return "\n".join(f"- {item[0].upper() + item[1:]}" for item in items)


def plain_list(items: list[str]) -> str:
    return ", ".join(items[:-1]) + " and " + items[-1] + "."


def social(rng: random.Random) -> list[dict]:
    out = []
    for _ in range(260):
        out.append(chat(rng.choice(GREET_USER), rng.choice(GREET_BOT)))
    for name in NAMES:
        out.append(chat(f"Hello, I'm {name}.", f"Nice to meet you, {name}! How can I help you today?"))
        out.append(chat(f"Hey, {name} here.", f"Hi {name}! What would you like to talk about?"))
    for _ in range(120):
        out.append(chat(rng.choice(WELLBEING_USER), rng.choice(WELLBEING_BOT)))
    for _ in range(160):
        out.append(chat(rng.choice(THANKS_USER), rng.choice(THANKS_BOT)))
    for _ in range(100):
        out.append(chat(rng.choice(BYE_USER), rng.choice(BYE_BOT)))
    for feeling, answer in FEELINGS:
        for opener in ("I feel {f} today.", "I'm a little {f}.", "Today I am {f}.", "I am feeling {f}."):
            out.append(chat(opener.format(f=feeling), answer))
    for _ in range(200):  # a greeting, then a thank-you or a how-are-you in the same conversation
        follow = rng.choice([(THANKS_USER, THANKS_BOT), (WELLBEING_USER, WELLBEING_BOT), (BYE_USER, BYE_BOT)])
        out.append(
            chat(rng.choice(GREET_USER), rng.choice(GREET_BOT), rng.choice(follow[0]), rng.choice(follow[1]))
        )
    return out


def facts(rng: random.Random) -> list[dict]:
    out = []
    for country, capital in CAPITALS:
        for q in rng.sample(CAPITAL_Q, 4):
            out.append(chat(q.format(c=country), rng.choice(CAPITAL_A).format(c=country, k=capital)))
        out.append(
            chat(f"Is {capital} the capital of {country}?", f"Yes, {capital} is the capital of {country}.")
        )
    for animal, (sound, home, legs, food) in ANIMALS.items():
        out += [
            chat(f"What sound does a {animal} make?", f"A {animal} {sound}."),
            chat(f"Where does a {animal} live?", f"A {animal} usually {home}."),
            chat(
                f"How many legs does a {animal} have?",
                f"A {animal} has {legs} legs." if legs else f"A {animal} has no legs at all.",
            ),
            chat(f"What does a {animal} eat?", f"A {animal} eats {food}."),
        ]
    for thing, colour in COLOURS:
        out.append(chat(f"What colour is {thing}?", f"{thing[0].upper() + thing[1:]} is {colour}."))
        out.append(chat(f"Tell me the colour of {thing}.", f"It is {colour}."))
    for a, b in OPPOSITES:
        out.append(chat(f"What is the opposite of {a}?", f"The opposite of {a} is {b}."))
        out.append(chat(f'Give me the opposite of the word "{b}".', f'The opposite of "{b}" is "{a}".'))
    for job, does in JOBS:
        out.append(chat(f"What does a {job} do?", f"A {job} {does}."))
        out.append(chat(f"Who {does.split(' and ')[0]}?", f"A {job} does."))
    for i, month in enumerate(MONTHS):
        nxt = MONTHS[(i + 1) % 12]
        out.append(chat(f"Which month comes after {month}?", f"{nxt} comes after {month}."))
        out.append(chat(f"What number is the month of {month}?", f"{month} is month number {i + 1}."))
    for i, day in enumerate(DAYS):
        out.append(chat(f"What day comes after {day}?", f"The day after {day} is {DAYS[(i + 1) % 7]}."))
    for _ in range(220):
        a, b = rng.randint(2, 40), rng.randint(2, 40)
        out.append(chat(f"How much is {a} + {b}?", f"{a} + {b} = {a + b}."))
    for _ in range(100):
        a, b = rng.randint(2, 12), rng.randint(2, 12)
        out.append(chat(f"Multiply {a} by {b}.", f"{a} multiplied by {b} is {a * b}."))
    return out


def lists(rng: random.Random) -> list[dict]:
    out = []
    for cat, pool in POOLS.items():
        for _ in range(26):
            n = rng.randint(2, min(6, len(pool)))
            items = rng.sample(pool, n)
            style = rng.random()
            if style < 0.45:
                out.append(chat(rng.choice(LIST_Q_NUMBERED).format(n=n, cat=cat), numbered(items)))
            elif style < 0.8:
                out.append(chat(rng.choice(LIST_Q_BULLETS).format(n=n, cat=cat), bulleted(items)))
            else:
                out.append(
                    chat(
                        rng.choice(LIST_Q_PLAIN).format(n=n, cat=cat),
                        f"Here are {n} {cat}: {plain_list(items)}",
                    )
                )
    return out


def explanations(rng: random.Random) -> list[dict]:
    out = []
    for thing, text in EXPLAIN.items():
        for q in rng.sample(EXPLAIN_Q, 3):
            out.append(chat(q.format(x=thing), text))
        first = text.split(". ")[0].rstrip(".") + "."
        out.append(chat(f"In one sentence, what is {thing}?", first))
    for question, answer in WHY:
        out.append(chat(question, answer))
        out.append(chat(question.replace("Why", "Can you explain why", 1), answer))
    return out


def formats(rng: random.Random) -> list[dict]:
    out = []
    for sentence in SENTENCES:
        cap = sentence[0].upper() + sentence[1:] + "."
        out += [
            chat(f"Write this in capital letters: {cap}", sentence.upper() + "."),
            chat(f"Rewrite in lowercase: {sentence.upper()}.", sentence + "."),
            chat(f"Turn this into a question: {cap}", _question(sentence)),
            chat(
                f'How many words are in this sentence: "{cap}"?', f"There are {len(sentence.split())} words."
            ),
        ]
    for english, french in WORDS_FR:
        out.append(chat(f'How do you say "{english}" in French?', f'In French, "{english}" is "{french}".'))
        out.append(
            chat(f'What does the French word "{french}" mean in English?', f'"{french}" means "{english}".')
        )
    for word in ["yes", "no", "maybe", "hello", "sun", "blue"]:
        for n in (2, 3, 4):
            out.append(chat(f'Repeat the word "{word}" {n} times.', " ".join([word] * n)))
    for _ in range(40):
        a, b = rng.sample(range(1, 60), 2)
        out.append(chat(f"Answer with yes or no only: is {a} bigger than {b}?", "Yes." if a > b else "No."))
    return out


def _question(sentence: str) -> str:
    words = sentence.split()
    if words[1] in ("will", "is") or words[2] in ("will", "is"):
        k = 1 if words[1] in ("will", "is") else 2
        rest = words[:k] + words[k + 1 :]
        return f"{words[k].capitalize()} {' '.join(rest)}?"
    return f"Is it true that {sentence}?"


def passages(rng: random.Random) -> list[dict]:
    out = []
    for _ in range(300):
        name = rng.choice(NAMES)
        place, item, day, weather = (
            rng.choice(PLACES),
            rng.choice(ITEMS),
            rng.choice(DAYS),
            rng.choice(WEATHER),
        )
        friend = rng.choice([n for n in NAMES if n != name])
        text = (
            f"On {day}, {name} went to the {place} with {friend}. The weather was {weather}. "
            f"At the {place}, {name} bought {item}. In the evening, they went home and talked about "
            f"their day."
        )
        task = rng.choice(
            [
                "Summarise this text in one sentence.",
                "Give a one-sentence summary of the text.",
                "What is this short story about? Answer in one sentence.",
            ]
        )
        out.append(
            chat(
                f"{task}\n\n{text}",
                f"On a {weather} {day}, {name} and {friend} went to the {place}, where {name} bought {item}.",
            )
        )
        question = rng.choice(
            [
                ("Who went with {n}?", "{f} went with {n}."),
                ("What did {n} buy?", "{n} bought {i}."),
                ("Where did {n} go?", "{n} went to the {p}."),
            ]
        )
        q, a = question
        out.append(
            chat(
                f"Read the text and answer: {q.format(n=name)}\n\n{text}",
                a.format(n=name, f=friend, i=item, p=place),
            )
        )
    return out


def memory(rng: random.Random) -> list[dict]:
    out = []
    for _ in range(150):
        name = rng.choice(NAMES)
        out.append(
            chat(
                f"Hello, my name is {name}.",
                f"Hello {name}, nice to meet you!",
                "Do you remember my name?",
                f"Yes, your name is {name}.",
            )
        )
    for _ in range(80):
        cat = rng.choice(["colour", "fruit", "sport", "hobby"])
        pool = {
            "colour": POOLS["colours"],
            "fruit": POOLS["fruits"],
            "sport": POOLS["sports"],
            "hobby": POOLS["hobbies"],
        }[cat]
        value = rng.choice(pool)
        out.append(
            chat(
                f"My favourite {cat} is {value}.",
                f"{value[0].upper() + value[1:]} is a great choice!",
                f"Which {cat} do I like most?",
                f"You said your favourite {cat} is {value}.",
            )
        )
    for _ in range(60):
        pet, pet_name = (
            rng.choice(["dog", "cat", "rabbit", "parrot"]),
            rng.choice(["Milo", "Luna", "Pepper", "Oscar", "Daisy", "Rocky"]),
        )
        out.append(
            chat(
                f"I have a {pet} named {pet_name}.",
                f"{pet_name} is a lovely name for a {pet}!",
                f"What is my {pet} called?",
                f"Your {pet} is called {pet_name}.",
            )
        )
    return out


def build(rng: random.Random) -> list[dict]:
    records = []
    for part in (social, facts, lists, explanations, formats, passages, memory):
        records += part(rng)
    unique = {json.dumps(r, sort_keys=True): r for r in records}  # drop repeats of the random choices
    records = list(unique.values())
    rng.shuffle(records)
    return records


def decontaminate(records: list[dict], against: Path) -> tuple[list[dict], int]:
    """Drop conversations the contamination check flags (none are expected: the templates avoid the
    bench's questions, and this pass makes sure)."""
    if not against.is_dir():
        return records, 0
    sys.path.insert(0, str(ROOT))
    from hessgpt.contamination import ContaminationIndex
    from hessgpt.data import Example

    index = ContaminationIndex.from_folder(against)
    kept = [r for i, r in enumerate(records) if not index.check_example(i, Example(messages=r["messages"]))]
    return kept, len(records) - len(kept)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(ROOT / "hessgpt" / "data" / "tiny_chat.jsonl"))
    parser.add_argument("--against", default=str(ROOT / "benchmarks" / "suites"))
    args = parser.parse_args()
    records = build(random.Random(SEED))
    records, dropped = decontaminate(records, Path(args.against))
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8")
    print(f"{out}: {len(records)} conversations ({dropped} dropped by the contamination check)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
