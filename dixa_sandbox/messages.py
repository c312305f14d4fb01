"""Synthetic ``message_export`` records: the texts they draw from and how one is assembled.

A message is built from its conversation's content (channel, direction, requester, agent: see
``data.py``) and 96 random bits of its own; texts come from a pool drawn once per seed, short
chat lines to e-mails of several KB with quoted history, in many scripts and with emoji.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from dixa_sandbox.pools import Record

#: Part of the message answers' cache key: bump it whenever the generated messages change.
MESSAGE_GENERATOR_VERSION = 1
TEXT_BITS = 12  # 4096 texts
AUTOMATED_SHARE_BITS = 3  # 1 in 8 outbound messages is automated
ID_BITS = 60  # the random part of a message id
CONTENT_BITS = 36  # the bits after ID_BITS that pick a message's content
MAX_MESSAGES = 4095  # seq is 3 hex digits of the id

#: Field order of a generated message (arrays last; some channels leave them out).
SCALAR_FIELDS = (
    "id", "csid", "created_at", "initial_channel", "author_name", "author_email", "direction",
    "text", "from_phone_number", "to_phone_number", "duration", "from", "is_automated_message",
    "voicemail_url", "recording_url", "chat_input_question", "chat_input_answer",
    "chat_menu_text",
)  # fmt: skip
ARRAY_FIELDS = ("to", "cc", "bcc", "attached_files")

_SENTENCES = (
    "Hi, my order still has not arrived and the tracking page has not changed for a week.",
    "Could you please check what happened to my parcel?",
    "Thank you for your patience, we have escalated this to our warehouse team.",
    "I was charged twice for the same invoice; please refund one of the payments.",
    "Hej, jeg har ikke modtaget min pakke endnu. Kan I hjælpe mig? 📦",
    "Tak for din besked, vi vender tilbage hurtigst muligt.",
    "Hallo, die Lieferung kam beschädigt an \u2013 können Sie mir Ersatz schicken?",
    "Bonjour, je voudrais changer l'adresse de livraison de ma commande n°4521.",
    "Merci beaucoup pour votre aide rapide ! 🙏",
    "Hola, ¿pueden confirmar si el reembolso ya se procesó?",
    "ご注文ありがとうございます。発送は明日の予定です。",
    "商品が届きません。確認していただけますか\uff1f",
    "您好\uff0c我的订单已经一周没有更新了\uff0c请帮忙查一下。",
    "Спасибо, проблема решена.",
    "Zoë from Ærøskøbing here again 😅 still waiting for the invoice.",
    'The app crashes when I tap "Pay now" \u2013 screenshot attached.',
    "Please find the invoice attached. Path: C:\\Users\\shop\\invoice.pdf",
    "We're sorry for the delay 😕 A new parcel left our warehouse today 🚚",
    "Can I exchange the shoes for size 42? 👟",
    "Your refund of 249,95 € has been issued and should arrive in 3\u20135 business days.",
    "Vielen Dank! Schönen Tag noch ☀️",
    "Återbetalningen är genomförd. Ha en fin dag!",
    "Til lykke med din nye konto 🎉 Log ind med din e-mail.",
    "Ok 👍",
)
_AUTOMATED = (
    "Thanks for contacting us! 🤖 We have received your message and will reply within 24 hours.",
    "Tak for din henvendelse. Vi svarer inden for 24 timer.",
    "You are number {n} in the queue. Please hold on.",
    "Our office is closed. Opening hours: Mon\u2013Fri 9:00\u201317:00 (CET).",
    "ご連絡ありがとうございます。担当者より折り返しご連絡いたします。",
)
_CHAT_QUESTIONS = (
    ("What is your order number?", "A-1001"),
    ("What can we help you with?", "Returns"),
    ("Hvad drejer din henvendelse sig om?", "Faktura"),
    ("Which language do you prefer? 🌍", "日本語"),
)
_MENU_TEXTS = ("1: Orders · 2: Returns · 3: Other", "Vælg: Ordre / Retur / Andet", "Main menu ☰")
_FILES = ("invoice.pdf", "photo.jpg", "skærmbillede.png", "领收书.pdf", "log.txt")
_SHORT, _MEDIUM, _LONG = (20, 300), (300, 1200), (2000, 5000)


@dataclass(frozen=True, slots=True)
class Party:
    """Who writes on one side of a conversation (any part may be missing)."""

    name: str | None
    email: str | None
    phone: str | None


class MessagePools:
    """Texts, automated replies, chat prompts and file names, drawn once from ``seed``.

    ``text_scale`` multiplies every text's length (1.0: records of about 1 KB on average).
    """

    def __init__(self, seed: int, text_scale: float = 1.0):
        rng = random.Random(f"sandbox-messages:{seed}")
        self.texts = [_text(rng, text_scale) for _ in range(1 << TEXT_BITS)]
        self.automated = [s.format(n=rng.randrange(2, 30)) for s in _AUTOMATED]
        self.id_prefix = f"{rng.getrandbits(16):04x}"  # seeds give different ids
        self.files = [f"https://files.example.com/{rng.getrandbits(64):016x}/{f}" for f in _FILES]


def message_id(prefix: str, random_bits: int, seq: int, csid: int) -> str:
    """A UUID-shaped id, unique by construction: its last parts are ``seq`` and ``csid``."""
    h = f"{prefix}{random_bits & ((1 << 44) - 1):011x}"
    return f"{h[:8]}-{h[8:12]}-4{h[12:15]}-8{seq:03x}-{csid:012x}"


def build_message(
    pools: MessagePools,
    csid: int,
    seq: int,
    created_at: int,
    bits: int,
    channel: str,
    direction: str,
    customer: Party,
    agent: Party,
) -> Record:
    """Message ``seq`` of conversation ``csid``, its content picked by ``bits``."""
    content = bits >> ID_BITS
    automated = direction == "outbound" and _bits(content, 0, AUTOMATED_SHARE_BITS) == 0
    author = customer if direction == "inbound" else agent
    other = agent if direction == "inbound" else customer
    text: str | None = pools.texts[_bits(content, 3, TEXT_BITS)]
    if automated:
        author = Party(None, None, None)
        text = pools.automated[_bits(content, 15, 8) % len(pools.automated)]
    record: Record = dict.fromkeys(SCALAR_FIELDS)
    record.update(
        id=message_id(pools.id_prefix, bits, seq, csid),
        csid=csid,
        created_at=created_at,
        initial_channel=channel,
        author_name=author.name,
        author_email=author.email,
        direction=direction,
        text=text,
        is_automated_message=automated,
    )
    pick = _bits(content, 23, 13)  # channel-specific choices
    files = [pools.files[pick % len(pools.files)]] if pick % 5 == 0 else []
    if channel in ("email", "contact_form"):
        record["from"] = author.email or "noreply@example.com"
        form = channel == "contact_form" and direction == "inbound"  # a web form: no recipient
        record["to"] = [] if form else [other.email or "support@example.com"]
        record["cc"] = [("cc." + (customer.email or "team@example.com"))] if pick % 7 == 0 else []
        record["bcc"] = None if pick % 3 == 0 else []
        record["attached_files"] = files if pick % 11 else None
    elif channel == "pstn_phone":
        record.update(
            from_phone_number=author.phone,
            to_phone_number=other.phone,
            duration=pick % 1800 if not automated else None,
            text=None if pick % 4 else text,  # a transcript, sometimes
            recording_url=f"https://recordings.example.com/{csid}/{seq}.mp3" if pick % 6 else None,
            voicemail_url=f"https://voicemail.example.com/{csid}/{seq}.mp3"
            if pick % 9 == 0
            else None,
        )
        record.update(dict.fromkeys(ARRAY_FIELDS))
    elif channel in ("sms", "whatsapp"):
        record.update(from_phone_number=author.phone, to_phone_number=other.phone)
        record["attached_files"] = files
    elif channel == "widget_chat":
        if seq == 0 and pick % 2 == 0:
            question, answer = _CHAT_QUESTIONS[pick % len(_CHAT_QUESTIONS)]
            record.update(chat_input_question=question, chat_input_answer=answer)
        if automated and pick % 3 == 0:
            record["chat_menu_text"] = _MENU_TEXTS[pick % len(_MENU_TEXTS)]
        if pick % 4 == 0:
            record["attached_files"] = files
    return record  # other channels: no array fields at all


def _text(rng: random.Random, scale: float) -> str:
    """One message text: 65% short, 28% medium, 7% long (an e-mail with quoted history)."""
    draw = rng.random()
    low, high = _SHORT if draw < 0.65 else _MEDIUM if draw < 0.93 else _LONG
    target = max(1, int(rng.randrange(low, high) * scale))
    parts: list[str] = []
    size = 0
    while size < target:
        sentence = rng.choice(_SENTENCES)
        if size > 1500 and rng.random() < 0.3:
            sentence = f"\n> {sentence}"  # quoted history
        elif parts and rng.random() < 0.1:
            sentence = f"\n\n{sentence}"
        parts.append(sentence)
        size += len(sentence) + 1
    return " ".join(parts)[: max(target, 2)]


def _bits(key: int, offset: int, width: int) -> int:
    return (key >> offset) & ((1 << width) - 1)
