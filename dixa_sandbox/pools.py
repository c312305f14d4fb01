"""The pools records are assembled from: people, subjects, tags, custom fields, bodies.

Drawn once per seed, so that building a record is only picking from lists (see ``data.py``).
Names and subjects mix scripts and emoji on purpose: ``Zoë Ærøskøbing``, ``東京``, ``📦``.
"""

from __future__ import annotations

import random
import unicodedata
from dataclasses import dataclass
from typing import Any

Record = dict[str, Any]
BODY_BITS = 10  # 1024 bodies
FOLLOW_UP_TAG = "follow-up"  # added by a conversation's second version


@dataclass(frozen=True, slots=True)
class Body:
    """Content shared by many records: a channel, a queue, tags, custom fields, ratings."""

    fields: Record  # channel, queue, direction, transferee and the channel-specific fields
    status: str
    tags: tuple[str, ...]
    custom_fields: tuple[Record, ...]
    ratings: tuple[tuple[int, str | None, str, str, str], ...]  # score, message, type, status, lang
    wrapup_notes: tuple[str, ...] | None
    assigned: bool
    transferred: bool
    anonymized: bool


_FIRST_NAMES = (
    "Zoë", "Søren", "Åsa", "José", "Łukasz", "Chloé", "Mikkel", "Ingrid", "Yuki", "Amara",
    "Noah", "Fatima", "Björn", "Élodie", "Giulia", "Hiroshi", "Olamide", "Priya", "Ólafur", "Mía",
)  # fmt: skip
_LAST_NAMES = (
    "Ærøskøbing", "Nørgaard", "Østergaard", "Müller", "García", "O'Brien", "Nguyễn", "Kowalski",
    "Smith", "Jensen", "Dubois", "Rossi", "Tanaka", "Okafor", "Sharma", "Çelik", "Þórsdóttir",
)  # fmt: skip
_WHOLE_NAMES = ("山田 太郎", "李小龍", "Αλέξης Παπαδόπουλος", "Иван Петров", "محمد علي", "Kim 🌸")
_SUBJECTS = (
    "Order {n} has not arrived 📦", "Refund request \u2013 order {n}", "Spørgsmål om faktura {n}",
    "Lieferung nach 東京 ({n})", "Can't log in 😕", "Change of address", "Återbetalning {n}",
    "Problème de paiement n°{n}", "RE: Your ticket #{n}", "Wrong size, exchange? 👟",
    "Invoice {n} \u2013 VAT number", "Подтверждение заказа {n}", "Cancel my subscription",
)  # fmt: skip
_CHANNELS = (
    "email", "email", "widget_chat", "widget_chat", "pstn_phone", "facebook_messenger", "sms",
    "whatsapp", "contact_form",
)  # fmt: skip
_QUEUES = ("Support", "Billing", "Returns", "VIP", "Kundeservice", "Technical", "Sales", "Night")
_TAGS = ("refund", "shipping", "vip", "complaint", "bug", "invoice", "priority", "spam", "praise")
_COUNTRIES = ("DK", "SE", "NO", "DE", "GB", "US", "JP", "FR", "ES", "IS")
_LANGUAGES = ("en", "da", "sv", "de", "ja", "fr")
_RATING_MESSAGES = (
    "Great help, thanks!",
    "Tak for hjælpen 🙏",
    "Too slow.",
    "とても親切でした",
    "",
)
_STATUSES = ("closed",) * 7 + ("open", "open", "pending")
_CHANNEL_FIELDS = (  # string fields only some channels fill in
    "dixa_email_integration_id", "dixa_email_integration_sender_name", "forwarding_email",
    "to_provisioned_phone_number_id", "to_provisioned_phone_number_name",
    "from_provisioned_phone_number_id", "from_provisioned_phone_number_name",
    "facebook_page_id", "facebook_page_name", "widget_id", "widget_name",
)  # fmt: skip
_CUSTOM_FIELDS = (  # identifier, data_type, values (a tuple value means an array value)
    ("order_number", "text", ("A-1001", "B-2002", "C-3003", "Ø-4004")),
    ("priority", "select", ("low", "normal", "high", "urgent")),
    ("products", "multi_select", (("shoes",), ("shoes", "socks"), ("hat", "scarf", "gloves"))),
    ("reason", "select", ("damaged", "late", "wrong_item", "other")),
    ("languages", "multi_select", (("en",), ("da", "en"), ("ja",))),
    ("note", "text", ("Ring efter kl. 16", "Käyttäjä pyysi soittoa", "Call back 📞")),
)

NO_AGENT: Record = {
    "assignee_id": None,
    "assignee_name": None,
    "assignee_email": None,
    "assignee_phone_number": None,
}


class Pools:
    """Requesters, agents, subjects, tag and field ids, and 1024 bodies, drawn from ``seed``."""

    def __init__(self, seed: int):
        rng = random.Random(f"sandbox-pools:{seed}")
        self.requesters = [self._requester(rng) for _ in range(2000)]
        self.agents = [self._agent(rng) for _ in range(40)]
        self.subjects = [s.format(n=rng.randrange(10_000, 99_999)) for s in _SUBJECTS * 20]
        self._tag_ids = {tag: _uuid(rng) for tag in (*_TAGS, FOLLOW_UP_TAG)}
        self._field_ids = {name: _uuid(rng) for name, _, _ in _CUSTOM_FIELDS}
        self._queues = [(_uuid(rng), name) for name in _QUEUES]
        # Body 0 carries custom fields with both a string and an array value.
        self.bodies = [self._body(rng, both_value_kinds=i == 0) for i in range(1 << BODY_BITS)]

    def tag_info(self, tag: str) -> Record:
        return {"id": self._tag_ids[tag], "name": tag, "is_deactivated": tag == "spam"}

    @staticmethod
    def _person(rng: random.Random) -> tuple[str, str]:
        if rng.random() < 0.1:
            name = rng.choice(_WHOLE_NAMES)
        else:
            name = f"{rng.choice(_FIRST_NAMES)} {rng.choice(_LAST_NAMES)}"
        local = _ascii(name) or "customer"
        return name, f"{local}.{rng.randrange(1000)}@example.com"

    @staticmethod
    def _phone(rng: random.Random) -> str:
        return f"+45{rng.randrange(20_000_000, 99_999_999)}"

    def _requester(self, rng: random.Random) -> Record:
        name, email = self._person(rng)
        extra_emails = tuple(f"alt{i}.{email}" for i in range(rng.choice((0, 0, 0, 1, 2))))
        extra_phones = tuple(self._phone(rng) for _ in range(rng.choice((0, 0, 0, 0, 1))))
        return {
            "requester_id": _uuid(rng),
            "requester_name": _maybe(rng, 0.05, name),
            "requester_email": _maybe(rng, 0.15, email),
            "requester_phone_number": _maybe(rng, 0.4, self._phone(rng)),
            "requester_additional_emails": extra_emails if rng.random() < 0.8 else None,
            "requester_additional_phone_numbers": extra_phones if rng.random() < 0.8 else None,
            "originating_country": _maybe(rng, 0.2, rng.choice(_COUNTRIES)),
        }

    def _agent(self, rng: random.Random) -> Record:
        name, email = self._person(rng)
        return {
            "assignee_id": _uuid(rng),
            "assignee_name": name,
            "assignee_email": email.replace("@example.com", "@support.example.com"),
            "assignee_phone_number": _maybe(rng, 0.5, self._phone(rng)),
        }

    def _custom_field(self, rng: random.Random, spec: tuple[str, str, tuple[Any, ...]]) -> Record:
        identifier, data_type, values = spec
        value = rng.choice(values)
        return {
            "attribute_id": self._field_ids[identifier],
            "identifier": identifier,
            "value": value,  # a tuple for multi-value fields, see _copy_field
            "data_type": data_type,
            "archived": rng.random() < 0.1,
        }

    def _body(self, rng: random.Random, both_value_kinds: bool) -> Body:
        channel = rng.choice(_CHANNELS)
        queue_id, queue_name = rng.choice(self._queues)
        transferred = channel == "pstn_phone" and rng.random() < 0.3
        fields: Record = {
            "initial_channel": channel,
            "queue_id": _maybe(rng, 0.1, queue_id),
            "queue_name": _maybe(rng, 0.1, queue_name),
            "direction": "outbound" if rng.random() < 0.15 else "inbound",
            "transferee_name": f"{rng.choice(_FIRST_NAMES)} (transfer)" if transferred else None,
            "transferee_number": self._phone(rng) if transferred else None,
            **dict.fromkeys(_CHANNEL_FIELDS),
        }
        if channel == "email":
            fields.update(
                dixa_email_integration_id=_uuid(rng),
                dixa_email_integration_sender_name=rng.choice(("Support", "Kundeservice 💬")),
                forwarding_email=_maybe(rng, 0.3, "support@example.com"),
            )
        elif channel == "pstn_phone":
            fields.update(
                to_provisioned_phone_number_id=_uuid(rng),
                to_provisioned_phone_number_name=rng.choice(("Main line", "Hotline DK")),
                from_provisioned_phone_number_id=_maybe(rng, 0.5, _uuid(rng)),
                from_provisioned_phone_number_name=_maybe(rng, 0.5, "Outbound"),
            )
        elif channel == "facebook_messenger":
            fields.update(
                facebook_page_id=str(rng.randrange(10**14, 10**15)), facebook_page_name="Shop"
            )
        elif channel == "widget_chat":
            fields.update(widget_id=_uuid(rng), widget_name=rng.choice(("Web chat", "App chat")))
        tags = tuple(rng.sample(_TAGS, rng.choice((0, 1, 1, 2, 2, 3, 4))))
        specs = rng.sample(_CUSTOM_FIELDS, rng.choice((0, 1, 2, 3, 4)))
        if both_value_kinds:
            specs = [_CUSTOM_FIELDS[0], _CUSTOM_FIELDS[2]]
        ratings = tuple(
            (
                rng.randint(1, 5),
                rng.choice(_RATING_MESSAGES) or None,
                rng.choice(("csat", "thumbs")),
                rng.choice(("rated", "rated", "offered", "cancelled")),
                rng.choice(_LANGUAGES),
            )
            for _ in range(rng.choice((0, 0, 0, 1, 1, 2)))
        )
        notes = rng.choice((None, (), (), ("Customer called back",), ("Refunded 💸", "Escalated")))
        return Body(
            fields=fields,
            status=rng.choice(_STATUSES),
            tags=tags,
            custom_fields=tuple(self._custom_field(rng, spec) for spec in specs),
            ratings=ratings,
            wrapup_notes=notes,
            assigned=rng.random() < 0.85,
            transferred=transferred,
            anonymized=rng.random() < 0.02,
        )


def _uuid(rng: random.Random) -> str:
    """A UUID-shaped string from ``rng`` (``uuid.uuid4`` is not reproducible)."""
    h = f"{rng.getrandbits(128):032x}"
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-a{h[17:20]}-{h[20:]}"


def _ascii(text: str) -> str:
    """``"Zoë Ærøskøbing"`` -> ``"zoe.rskbing"``: a best-effort e-mail local part."""
    plain = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return ".".join("".join(c for c in word if c.isalnum()) for word in plain.lower().split())


def _maybe(rng: random.Random, share_null: float, value: Any) -> Any:
    return None if rng.random() < share_null else value


def copy_field(field: Record) -> Record:
    """A custom field for one record, its array value (kept as a tuple in the pool) a list."""
    value = field["value"]
    return {**field, "value": list(value)} if isinstance(value, tuple) else dict(field)
