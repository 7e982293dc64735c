"""The bundled text demo: customer-support tickets labelled by intent, written by code.

Nothing may be downloaded at run time, so the sentences come from templates and word lists with
a fixed seed. Words are shared across intents ("order", "card", "charge", "app") and some
words are misspelt, so no single word gives the label away, yet a text model reaches > 90%.
"""

from __future__ import annotations

import random

import pandas as pd

TEXT_COLUMN, LABEL_COLUMN = "ticket", "intent"
PER_INTENT = 120
MISLABELLED = 0.03

_OPENERS = ["", "", "Hi,", "Hello,", "Hey team,", "Good morning,", "Dear support,", "Urgent:"]
_CLOSERS = [
    "",
    "",
    "",
    "Thanks.",
    "Thank you!",
    "Please help.",
    "Any update?",
    "Cheers",
    "Regards, a frustrated customer",
    "I need this sorted today.",
]
_PRODUCTS = [
    "headphones",
    "coffee maker",
    "laptop stand",
    "phone case",
    "desk lamp",
    "running shoes",
    "backpack",
    "smart watch",
    "blender",
    "keyboard",
]
_SERVICES = ["premium plan", "family plan", "subscription", "annual membership", "pro account"]
_DEVICES = ["iPhone", "Android phone", "laptop", "tablet", "Windows PC", "Mac"]
_WHEN = [
    "yesterday",
    "last week",
    "on Monday",
    "two days ago",
    "this morning",
    "since Friday",
    "a month ago",
    "again today",
]

_TEMPLATES = {
    "billing": [
        "I was charged twice for my {service} {when}",
        "Why is my invoice higher than the price of the {service}?",
        "My card was billed {amount} but I expected {amount2}",
        "Can you send me a receipt for the {service} payment?",
        "The payment for my order failed but the bank still shows a pending charge",
        "Please update the credit card on my {service}, the old one expired",
        "I see an unknown charge of {amount} on my statement from {when}",
        "How do I change my billing address for the invoice?",
        "The {service} renewal price went up without notice, explain the bill",
        "You took {amount} from my account {when}, what is this fee for?",
    ],
    "shipping": [
        "Where is my order? The {product} should have arrived {when}",
        "The tracking number for my {product} has not updated since {when}",
        "My package says delivered but nothing is at my door",
        "Can I change the delivery address for the {product} I ordered {when}?",
        "The courier left my {product} with a neighbour I do not know",
        "How long does shipping take to Canada for a {product}?",
        "My order of a {product} is stuck in customs since {when}",
        "The parcel with my {product} arrived late and the box was crushed",
        "Can you ship the {product} express instead of standard delivery?",
        "Delivery was scheduled {when} but the driver never came",
    ],
    "account": [
        "I cannot log in to my account, the password reset email never arrives",
        "How do I change the email address on my profile?",
        "Please delete my account and all my personal data",
        "Someone else logged in to my account {when}, I think it was hacked",
        "I want to change my username and update my profile photo",
        "My account got locked after too many login attempts {when}",
        "How can I turn on two-factor authentication for my account?",
        "I forgot which email I used to sign up for the {service}",
        "Please merge my two accounts, I made a second one by mistake",
        "The verification code for my account does not come by SMS",
    ],
    "technical": [
        "The app crashes every time I open it on my {device}",
        "I get error {code} when I try to upload a file",
        "The website is very slow and pages do not load on my {device}",
        "Since the update {when} the app freezes on the checkout screen",
        "The {product} does not connect to the app over bluetooth",
        "Notifications stopped working on my {device} {when}",
        "The search button does nothing, it shows a blank page with error {code}",
        "Video playback stutters in the app on my {device}",
        "I cannot install the latest version of the app on my {device}",
        "The sync between my {device} and the website fails with error {code}",
    ],
    "refund": [
        "I want a refund for the {product}, it stopped working {when}",
        "I returned the {product} {when} but still have not got my money back",
        "Please cancel my {service} and refund the last payment",
        "The {product} arrived broken, I would like my money back",
        "How long does a refund take to reach my card?",
        "I was promised a refund of {amount} for the late order, where is it?",
        "Can I return the {product} and get a full refund?",
        "The refund for my cancelled order shows as pending since {when}",
        "I ordered the wrong size, can I send the {product} back for a refund?",
        "You approved my return {when}, when will the {amount} be credited?",
    ],
}


def _typo(word: str, rng: random.Random) -> str:
    """Drop or swap a letter: real tickets are not spell-checked."""
    if len(word) < 5 or not word.isalpha():
        return word
    i = rng.randrange(1, len(word) - 2)
    if rng.random() < 0.5:
        return word[:i] + word[i + 1 :]
    return word[:i] + word[i + 1] + word[i] + word[i + 2 :]


def _fill(template: str, rng: random.Random) -> str:
    return template.format(
        product=rng.choice(_PRODUCTS),
        service=rng.choice(_SERVICES),
        device=rng.choice(_DEVICES),
        when=rng.choice(_WHEN),
        amount=f"${rng.randint(5, 300)}.{rng.randint(0, 99):02d}",
        amount2=f"${rng.randint(5, 300)}",
        code=rng.choice(["500", "403", "E-12", "0x80070005", "404", "timeout"]),
    )


def ticket(intent: str, rng: random.Random) -> str:
    body = _fill(rng.choice(_TEMPLATES[intent]), rng)
    words = [_typo(w, rng) if rng.random() < 0.06 else w for w in body.split()]
    if rng.random() < 0.3:
        words = [w.lower() for w in words]
    parts = [rng.choice(_OPENERS), " ".join(words), rng.choice(_CLOSERS)]
    return " ".join(p for p in parts if p)


def support_tickets(per_intent: int = PER_INTENT, seed: int = 7) -> pd.DataFrame:
    """per_intent tickets for each of five intents, shuffled; the same every time."""
    rng = random.Random(seed)
    intents = list(_TEMPLATES)
    rows = [
        {TEXT_COLUMN: ticket(intent, rng), LABEL_COLUMN: intent}
        for intent in intents
        for _ in range(per_intent)
    ]
    for row in rows:  # a few tickets filed under the wrong intent, as in any real queue
        if rng.random() < MISLABELLED:
            row[LABEL_COLUMN] = rng.choice(intents)
    rng.shuffle(rows)
    return pd.DataFrame(rows, columns=[TEXT_COLUMN, LABEL_COLUMN])
