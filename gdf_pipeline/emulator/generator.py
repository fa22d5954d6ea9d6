"""Seeded, realistic GoDataFeed orders for the emulator.

The orders are built to trip a careless loader: money in currencies with 0, 2 and 3 minor
digits, any Unicode in names, addresses and titles (quotes, commas, newlines, accents, CJK,
Arabic, emoji), nulls wherever the contract allows them, unknown extra fields at several levels,
postal codes with leading zeros, and a few orders whose totals are off by marketplace rounding.

Speed matters as much as variety: benchmarks ask for 100,000 orders. Products form a small
catalog, and buyers a pool per marketplace and country that later orders draw from again (repeat
customers), so an order costs a few dozen random draws and integer sums. Amounts are integers of
minor units, summed exactly, and become Decimals with the currency's digits only at the end.
"""

from __future__ import annotations

import gc
import random
from bisect import bisect
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from itertools import accumulate

from gdf_pipeline.gdf import contract

MARKETPLACES = ("Amazon", "Walmart", "eBay", "Google", "Target+")
_MARKETPLACE_WEIGHTS = (50, 20, 15, 8, 7)

# Where each marketplace's buyers live; the country decides the currency. About 80 % USD.
_COUNTRY_WEIGHTS = {
    "Amazon": (("US", 72), ("CA", 7), ("GB", 6), ("DE", 4), ("FR", 3), ("JP", 5), ("KW", 3)),
    "Walmart": (("US", 92), ("CA", 8)),
    "eBay": (("US", 75), ("GB", 10), ("DE", 5), ("CA", 7), ("FR", 3)),
    "Google": (("US", 90), ("CA", 10)),
    "Target+": (("US", 100),),
}
_CURRENCY = {
    "US": "USD",
    "CA": "CAD",
    "GB": "GBP",
    "DE": "EUR",
    "FR": "EUR",
    "JP": "JPY",
    "KW": "KWD",
}
# Minor units of the currency per US cent: prices are kept in US cents and converted per order.
_MINOR_PER_CENT = {"USD": 1.0, "CAD": 1.36, "GBP": 0.79, "EUR": 0.92, "JPY": 1.5, "KWD": 3.07}
# Sales tax in basis points; European, Japanese and Kuwaiti prices include their taxes.
_TAX_BASIS_POINTS = {
    "US": (0, 400, 600, 625, 700, 725, 825, 887, 1025),
    "CA": (500, 1300, 1497),
}
_UTC_OFFSETS = {
    "US": (-5, -6, -7, -8),
    "CA": (-5, -8),
    "GB": (0,),
    "DE": (1,),
    "FR": (1,),
    "JP": (9,),
    "KW": (3,),
}

_FIRST_NAMES = {
    "en": (
        "Dana",
        "Michael",
        "Jennifer",
        "Renée",
        "José",
        "María",
        "Zoë",
        "DeShawn",
        "Siobhán",
        "Chris",
        "Aaliyah",
        "Wei",
        "Priya",
        "Nguyễn",
        "Łukasz",
        "Ana-Lucía",
        "Mary Kate",
    ),
    "de": ("Jürgen", "Götz", "Anja", "Björn", "Käthe", "Sören"),
    "fr": ("François", "Hélène", "Chloé", "Zoé", "Anaïs", "Jérôme"),
    "ar": ("Ahmed", "Fatima", "Yousef", "Noura", "محمد", "فاطمة"),
}
_LAST_NAMES = {
    "en": (
        "Whitfield",
        "O'Brien",
        "García",
        "Smith",
        "Johnson",
        "Núñez",
        "D'Angelo",
        "Kowalski",
        "van der Berg",
        "MacDonald",
        "Smith-Jones",
        "Lê",
        "Øverby",
        "St. Claire",
    ),
    "de": ("Müller", "Schröder", "Weiß", "Groß", "Fußmann", "Köhler"),
    "fr": ("Lefèvre", "Dubois", "Bérénger", "de la Tour", "Côté", "L'Écuyer"),
    "ar": ("Al-Sabah", "Al-Mutairi", "Al-Enezi", "العتيبي", "الرشيدي"),
}
_JAPANESE_NAMES = ("田中 太郎", "佐藤 花子", "鈴木 一郎", "高橋 美咲", "Taro Yamada", "渡辺 さくら")
# Names that break naive CSV writers, SQL string building or single-line log formats.
_AWKWARD_NAMES = (
    'Dana "DJ" Whitfield',
    "Whitfield, Dana",
    "Zoë 🎉 Party Supplies",
    "Anne-Marie O'Connor-Smith",
    "李小龙",
    "Robert'); DROP TABLE orders;--",
    "José\nNúñez",
    "Ωmega Ψ Φ",
)
_LANGUAGE = {"US": "en", "CA": "en", "GB": "en", "DE": "de", "FR": "fr", "KW": "ar"}

_CITIES = {
    "US": (
        ("Portland", "ME", "04101"),
        ("Portland", "OR", "97205"),
        ("New York", "NY", "10001"),
        ("Los Angeles", "CA", "90012"),
        ("Chicago", "IL", "60601"),
        ("Houston", "TX", "77002"),
        ("San Juan", "PR", "00901"),
        ("Honolulu", "HI", "96813"),
        ("Anchorage", "AK", "99501"),
        ("Española", "NM", "87532"),
        ("Coeur d'Alene", "ID", "83814"),
        ("Seattle", "WA", "98101"),
        ("Miami", "FL", "33130"),
        ("Beverly Hills", "CA", "90210-1234"),
        ("Boston", "MA", "02108"),
    ),
    "CA": (
        ("Toronto", "ON", "M5V 2T6"),
        ("Montréal", "QC", "H2X 1Y4"),
        ("Québec", "QC", "G1R 4P5"),
        ("Vancouver", "BC", "V6B 1A1"),
        ("St. John's", "NL", "A1C 5M2"),
    ),
    "GB": (
        ("London", "Greater London", "SW1A 1AA"),
        ("Manchester", "Greater Manchester", "M1 1AE"),
        ("Edinburgh", "City of Edinburgh", "EH1 1YZ"),
        ("Cardiff", "South Glamorgan", "CF10 1EP"),
    ),
    "DE": (
        ("München", "Bayern", "80331"),
        ("Köln", "Nordrhein-Westfalen", "50667"),
        ("Berlin", "Berlin", "10117"),
        ("Düsseldorf", "Nordrhein-Westfalen", "40213"),
    ),
    "FR": (
        ("Paris", "Île-de-France", "75011"),
        ("Lyon", "Auvergne-Rhône-Alpes", "69002"),
        ("Besançon", "Bourgogne-Franche-Comté", "25000"),
    ),
    "JP": (
        ("渋谷区", "東京都", "150-0002"),
        ("大阪市北区", "大阪府", "530-0001"),
        ("札幌市中央区", "北海道", "060-0001"),
    ),
    "KW": (
        ("Kuwait City", "Al Asimah", "13001"),
        ("Salmiya", "Hawalli", "22001"),
        ("الجهراء", "Al Jahra", "01000"),
    ),
}
_STREETS = {
    "US": (
        "Harbor Rd",
        "Main St",
        "Elm Street",
        "Martin Luther King Jr Blvd",
        "Avenida de las Américas",
        "Old Mill Ln",
        "Peachtree St NE",
        "Broadway",
    ),
    "CA": ("Rue Sainte-Catherine", "Yonge St", "Chemin de la Côte-des-Neiges", "Water St"),
    "GB": ("Baker Street", "King's Road", "High Street", "Royal Mile"),
    "DE": ("Maximilianstraße", "Schloßallee", "Königsallee", "Unter den Linden"),
    "FR": ("Rue de l'Église", "Boulevard Saint-Germain", "Place Bellecour", "Quai d'Orsay"),
    "JP": ("神南1-2-3", "梅田3丁目1-1", "北1条西2丁目", "道玄坂2-10-7"),
    "KW": ("Gulf Road", "شارع الخليج العربي", "Salem Al Mubarak St", "Block 5, Street 12"),
}
_ADDRESS2 = (
    "Apt 4",
    "Suite 210",
    'Unit 5, Building "C"',
    "Floor 3\nAttn: Receiving",
    "c/o José Núñez",
    "#12-B",
    "2F 〒 back entrance",
    "Leave at door 📦",
)
_COMPANIES = (
    "Acme, Inc.",
    'The "Best" Shop LLC',
    "Müller & Söhne GmbH",
    "株式会社サンプル",
    "Café Olé S.A.R.L.",
    "O'Reilly Auto Parts #1234",
)
_SHIPPING_METHODS = (
    "Standard",
    "Standard",
    "Standard",
    "Expedited",
    "Two-Day",
    "NextDay",
    "Economy",
)
_PHONE_FORMATS = {
    "US": "+1 {a}-555-{b}",
    "CA": "+1 {a}-555-{b}",
    "GB": "+44 20 7946 {b}",
    "DE": "+49 89 {a}{b}",
    "FR": "+33 1 {a} {b}",
    "JP": "+81 3-{b}-{b}",
    "KW": "+965 {a}{b}",
}
_EMAIL_DOMAINS = {
    "Amazon": "marketplace.amazon.com",
    "Walmart": "relay.walmart.com",
    "eBay": None,
    "Google": "pay.google.com",
    "Target+": "partners.target.com",
}
_BUYER_DOMAINS = ("example.com", "example.org", "mail.example.net", "exämple.de")

# Base products: SKU stem, title, price in US cents. Titles carry quotes, commas, newlines,
# accents, CJK and emoji on purpose.
_PRODUCTS = (
    ("MUG", "Black mug, 12 oz", 1299),
    ("CABLE", 'USB-C cable 6" (braided)', 999),
    ("BOWL", "Café au lait bowl — set of 2", 2450),
    ("KOKESHI", "こけし人形 (Kokeshi doll)", 3999),
    ("GIFT", "Gift box 🎁 red", 799),
    ("TEE", 'T-shirt "I ❤ NY", cotton', 1999),
    ("CANDLE", "Crème brûlée scented candle", 1650),
    ("LAMP", "Desk lamp, LED\nwarm white", 4599),
    ("PLUSH", "Plüschtier Bär, 30 cm", 2199),
    ("TEA", "抹茶 Matcha tea 100 g", 1890),
    ("CASE", "Phone case – clear, slim", 1499),
    ("SOCKS", "Wool socks, 3-pack (M/L)", 1799),
    ("KNIFE", "Chef's knife 8\", stainless", 5999),
    ("PEN", 'Fountain pen, nib "F"', 3500),
    ("BOTTLE", "Water bottle 1 L 💧", 2299),
    ("PUZZLE", "Puzzle 1000 pièces « Château »", 2799),
    ("SPICE", "Za'atar spice mix, 200 g", 899),
    ("RUG", "Rug 5' x 7', jute", 12999),
    ("CHAIR", "Folding chair; set of ½ dozen", 8999),
    ("TV", 'TV 55" 4K — 2026 model', 49999),
)
_VARIANTS = (
    ("BLK", "Black"),
    ("WHT", "White"),
    ("RED", "Red"),
    ("GRN", "Grün"),
    ("BLU", "Bleu"),
    ("GRY", "Gray/Grey"),
    ("PNK", "ピンク"),
    ("XL", "XL"),
)
_ALPHANUMERIC = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"

# Share of orders carrying each kind of oddity.
_NULL_BILLING_RATE = 0.35
_TOTALS_MISMATCH_RATE = 0.03
_EXTRA_FIELDS_RATE = 0.3
_LOCAL_OFFSET_RATE = 0.2

# Buyers per marketplace and country; beyond these, buyers come back for more orders.
_BUYERS_IN_US = 2000
_BUYERS_ELSEWHERE = 200

_LINE_COUNTS = tuple(range(1, 21))
# Most orders have one or two lines; one in twenty has six or more.
_LINE_COUNT_WEIGHTS = (60, 20, 8, 4, 3) + (1 / 3,) * 15
_QUANTITIES = (1, 2, 3, 4, 5, 6, 10, 24)
_QUANTITY_WEIGHTS = (75, 14, 4, 2, 2, 1, 1, 1)
_GIFT_MESSAGES = (None, "Happy birthday, Zoë!\nLove, Mom", 'Say "hi" 👋', "お誕生日おめでとう")


def money(minor_units: int, digits: int) -> Decimal:
    """An exact Decimal with exactly `digits` places for an amount in minor units."""
    return Decimal(minor_units).scaleb(-digits)


def format_timestamp(moment: datetime) -> str:
    """The wire form of a GoDataFeed system timestamp: UTC, whole seconds, `Z`."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@contextmanager
def paused_gc():
    """Pauses the cyclic garbage collector while a large set of orders is built.

    Orders hold no reference cycles, so the collector has nothing to find in them, yet with
    100,000 orders its repeated passes over the growing heap cost more than building them.
    """
    collecting = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if collecting:
            gc.enable()


class _Money(dict):
    """`money` for one currency, cached: orders repeat the same prices, shipping and zeros.

    Indexing is a plain dict lookup; only a new amount reaches Python code.
    """

    def __init__(self, digits: int):
        super().__init__()
        self.digits = digits

    def __missing__(self, minor_units: int) -> Decimal:
        if len(self) > 200_000:
            self.clear()
        value = self[minor_units] = money(minor_units, self.digits)
        return value


class _Picker:
    """Weighted choice by bisection over cumulative weights; faster than `random.choices`."""

    def __init__(self, items, weights):
        self.items = tuple(items)
        self.cumulative = tuple(accumulate(weights))
        self.total = self.cumulative[-1]

    def __call__(self, rng: random.Random):
        return self.items[bisect(self.cumulative, rng.random() * self.total)]


class OrderGenerator:
    """Builds NEW orders from one `random.Random(seed)`: the same seed gives the same orders.

    `history` and `batch` return `(order, orderDate, importedAt)` triples: the order as the
    API answers it, with its two dates already parsed for the store.
    """

    def __init__(self, seed: int = 0, store_id: str | None = None):
        self._rng = random.Random(f"gdf-emulator-orders:{seed}")
        rng = self._rng
        self.store_id = store_id or str(rng.randint(1000, 9999))
        self._next_item_id = rng.randint(10_000_000, 20_000_000)
        self._used_ids: set[str] = set()
        self._marketplace = _Picker(MARKETPLACES, _MARKETPLACE_WEIGHTS)
        self._country = {
            name: _Picker([c for c, _ in weights], [w for _, w in weights])
            for name, weights in _COUNTRY_WEIGHTS.items()
        }
        self._line_count = _Picker(_LINE_COUNTS, _LINE_COUNT_WEIGHTS)
        self._quantity = _Picker(_QUANTITIES, _QUANTITY_WEIGHTS)
        self._money = {
            currency: _Money(contract.minor_digits(currency)) for currency in _CURRENCY.values()
        }
        self._zones = {
            country: tuple(timezone(timedelta(hours=hours)) for hours in offsets)
            for country, offsets in _UTC_OFFSETS.items()
        }
        # Filled as orders need them, so that a small emulator starts instantly.
        self._buyers: dict[tuple[str, str], list] = {}
        self._products = [
            self._product(stem, title, cents, variant)
            for stem, title, cents in _PRODUCTS
            for variant in _VARIANTS
        ]
        # Unit prices per currency, in minor units, in the order of `self._products`.
        self._prices = {
            currency: [max(1, round(product["cents"] * factor)) for product in self._products]
            for currency, factor in _MINOR_PER_CENT.items()
        }

    def history(self, count: int, now: datetime) -> list[tuple[dict, datetime, datetime]]:
        """`count` orders imported in batches every 15-30 minutes up to a few minutes ago.

        GoDataFeed imports on a schedule, so many orders share one `importedAt`: the listing's
        tie-break on `id` matters. The latest batch lands today, with orders dated today.
        """
        with paused_gc():
            return self._history(count, now)

    def _history(self, count: int, now: datetime) -> list[tuple[dict, datetime, datetime]]:
        rng = self._rng
        batches: list[tuple[datetime, int]] = []
        imported_at = now - timedelta(seconds=rng.randint(60, 600))
        remaining = count
        while remaining > 0:
            size = min(remaining, rng.randint(1, 40))
            batches.append((imported_at, size))
            remaining -= size
            imported_at -= timedelta(seconds=rng.randint(900, 1800))
        orders = []
        for imported_at, size in reversed(batches):
            orders.extend(self.batch(size, imported_at))
        return orders

    def batch(self, count: int, imported_at: datetime) -> list[tuple[dict, datetime, datetime]]:
        """`count` NEW orders of one import run at `imported_at`."""
        imported_at = imported_at.astimezone(UTC).replace(microsecond=0)
        imported_text = format_timestamp(imported_at)
        midnight = imported_at.replace(hour=0, minute=0, second=0)
        today_seconds = int((imported_at - midnight).total_seconds())
        return [self._order(imported_at, imported_text, today_seconds) for _ in range(count)]

    def _order(self, imported_at: datetime, imported_text: str, today_seconds: int):
        rng = self._rng
        random_ = rng.random
        marketplace = self._marketplace(rng)
        country = self._country[marketplace](rng)
        currency = _CURRENCY[country]
        customer, shipping_address, billing_address = self._buyer(marketplace, country)

        # Orders reach GoDataFeed minutes to hours after the buyer placed them; half of them
        # are placed the same day they are imported, so same-day shipments are common.
        if random_() < 0.5 or today_seconds < 120:
            lag = 60 + int(random_() * 6 * 3600)
        else:
            lag = 60 + int(random_() * (today_seconds - 61))
        order_date = imported_at - timedelta(seconds=lag)
        if random_() < _LOCAL_OFFSET_RATE:
            order_date_text = order_date.astimezone(self._pick(self._zones[country])).isoformat()
        else:
            order_date_text = order_date.isoformat()[:-6] + "Z"

        to_money = self._money[currency]
        items, (subtotal, shipping_total, tax_total, discount_total) = self._items(
            marketplace, country, currency
        )
        order_total = subtotal + shipping_total + tax_total - discount_total
        if random_() < _TOTALS_MISMATCH_RATE:
            # Marketplace rounding: the totals disagree with the lines by a unit or two.
            error = self._pick((-1, 1, 1, 2))
            if random_() < 0.7:
                order_total += error
            else:
                subtotal += error

        # The payload spelled out as the contract shows it; the keys come in the order of
        # `contract.ORDER_FIELDS`, and the conformance tests hold them to it.
        order = {
            "id": self._order_id(),
            "storeId": self.store_id,
            "marketplace": marketplace,
            "marketplaceOrderId": self._marketplace_order_id(marketplace),
            "status": contract.NEW,
            "orderDate": order_date_text,
            "importedAt": imported_text,
            "modifiedAt": imported_text,
            "acknowledgedAt": None,
            "sellerOrderNumber": None,
            "currency": currency,
            # Buyers' dicts are shared between their orders: nothing ever changes them.
            "customer": customer,
            "shippingAddress": shipping_address,
            "billingAddress": billing_address,
            "shippingMethod": None if random_() < 0.04 else self._pick(_SHIPPING_METHODS),
            "paymentMethod": self._payment_method(marketplace),
            "subtotal": to_money[subtotal],
            "shippingTotal": to_money[shipping_total],
            "taxTotal": to_money[tax_total],
            "discountTotal": to_money[discount_total],
            "orderTotal": to_money[order_total],
            "items": items,
            "shipment": None,
            "cancelledAt": None,
        }
        if random_() < _EXTRA_FIELDS_RATE:
            self._add_order_extras(order, marketplace, subtotal, to_money)
        return order, order_date, imported_at

    def _items(self, marketplace: str, country: str, currency: str):
        rng = self._rng
        random_ = rng.random
        to_money = self._money[currency]
        prices = self._prices[currency]
        products = self._products
        tax_rate = self._pick(_TAX_BASIS_POINTS.get(country, (0,)))
        shipping = 0 if random_() < 0.5 else max(1, round(499 * _MINOR_PER_CENT[currency]))
        quantity_picker = self._quantity
        quantities = quantity_picker.items
        quantity_weights = quantity_picker.cumulative
        quantity_total = quantity_picker.total
        items = []
        subtotal = shipping_total = tax_total = discount_total = 0
        for _ in range(self._line_count(rng)):
            index = int(random_() * len(products))
            product = products[index]
            quantity = quantities[bisect(quantity_weights, random_() * quantity_total)]
            line = quantity * prices[index]
            tax = (line * tax_rate + 5000) // 10000
            discount = line * (5 + int(random_() * 16)) // 100 if random_() < 0.1 else 0
            item = {
                "itemId": str(self._next_item_id),
                "sku": product["sku"],
                "marketplaceItemId": product["marketplaceItemIds"][marketplace],
                "title": product["title"],
                "quantity": quantity,
                "unitPrice": to_money[prices[index]],
                "taxAmount": to_money[tax],
                "shippingAmount": to_money[shipping],
                "discountAmount": to_money[discount],
            }
            self._next_item_id += 1
            if random_() < 0.08:
                item["condition"] = "New"
                item["giftMessage"] = _GIFT_MESSAGES[int(random_() * len(_GIFT_MESSAGES))]
                item["customizations"] = [{"name": "Engraving", "value": "For J. ❤"}]
            items.append(item)
            subtotal += line
            shipping_total += shipping
            tax_total += tax
            discount_total += discount
        return items, (subtotal, shipping_total, tax_total, discount_total)

    def _add_order_extras(self, order: dict, marketplace: str, subtotal: int, to_money):
        rng = self._rng
        order["fulfillmentChannel"] = self._pick(("MFN", "SellerFulfilled", "MFN"))
        if marketplace == "Amazon":
            order["isPrime"] = rng.random() < 0.6
            order["isBusinessOrder"] = rng.random() < 0.1
        order["marketplaceFees"] = {
            "commission": to_money[subtotal * 15 // 100],
            "currency": order["currency"],
        }
        order["tags"] = self._pick(([], ["priority"], ["gift", "fragile"]))

    def _buyer(self, marketplace: str, country: str) -> tuple[dict, dict, dict | None]:
        """A buyer's customer, shipping address and billing address (maybe null)."""
        pool = self._buyers.setdefault((marketplace, country), [])
        if len(pool) < (_BUYERS_IN_US if country == "US" else _BUYERS_ELSEWHERE):
            pool.append(self._new_buyer(marketplace, country))
            return pool[-1]
        return pool[int(self._rng.random() * len(pool))]

    def _new_buyer(self, marketplace: str, country: str) -> tuple[dict, dict, dict | None]:
        rng = self._rng
        name = self._name(country)
        city, state, postal_code = self._pick(_CITIES[country])
        address = {
            "name": name,
            "company": self._pick(_COMPANIES) if rng.random() < 0.08 else None,
            "address1": self._address1(country),
            "address2": self._pick(_ADDRESS2) if rng.random() < 0.4 else None,
            "city": city,
            "state": state,
            "postalCode": postal_code,
            "country": country,
            "phone": self._phone(country) if rng.random() < 0.5 else None,
        }
        if rng.random() < 0.15:
            address["addressType"] = self._pick(("Residential", "Commercial"))
            address["isValidated"] = rng.random() < 0.8
        email = None
        if rng.random() < 0.9:
            domain = _EMAIL_DOMAINS[marketplace] or self._pick(_BUYER_DOMAINS)
            email = f"{rng.getrandbits(40):010x}@{domain}"
        phone = self._phone(country) if rng.random() < 0.7 else None
        customer = {"name": name, "email": email, "phone": phone}
        if rng.random() < 0.2:
            customer["locale"] = self._pick(("en-US", "fr-CA", "de-DE", "ja-JP", "ar-KW"))
        if rng.random() < _NULL_BILLING_RATE:
            billing = None
        elif rng.random() < 0.7:
            billing = address
        else:
            billing = dict(address, address1=self._address1(country), address2=None)
        return customer, address, billing

    def _name(self, country: str) -> str:
        rng = self._rng
        if rng.random() < 0.04:
            return self._pick(_AWKWARD_NAMES)
        if country == "JP":
            return self._pick(_JAPANESE_NAMES)
        language = _LANGUAGE[country]
        return f"{self._pick(_FIRST_NAMES[language])} {self._pick(_LAST_NAMES[language])}"

    def _address1(self, country: str) -> str:
        street = self._pick(_STREETS[country])
        if country == "JP":
            return street
        number = self._rng.randint(1, 9999)
        return f"{street} {number}" if country in ("DE", "FR") else f"{number} {street}"

    def _phone(self, country: str) -> str:
        rng = self._rng
        return _PHONE_FORMATS[country].format(
            a=rng.randint(200, 989), b=f"{rng.randint(0, 9999):04d}"
        )

    def _product(self, stem: str, title: str, cents: int, variant: tuple[str, str]) -> dict:
        rng = self._rng
        code, label = variant
        size = rng.randint(1, 99)
        asin = "B0" + "".join(rng.choice(_ALPHANUMERIC) for _ in range(8))
        ids = {
            "Amazon": asin,
            "Walmart": str(rng.randint(100_000_000, 999_999_999)),
            "eBay": str(rng.randint(100_000_000_000, 999_999_999_999)),
            "Google": f"online:en:US:{stem}-{code}-{size}",
            "Target+": str(rng.randint(10_000_000, 99_999_999)),
        }
        # Some listings carry no marketplace item id at all.
        for marketplace in ids:
            if rng.random() < 0.08:
                ids[marketplace] = None
        return {
            "sku": f"{stem}-{code}-{size}",
            "title": f"{title} – {label}",
            "cents": max(99, cents + rng.randint(-cents // 5, cents // 5)),
            "marketplaceItemIds": ids,
        }

    def _order_id(self) -> str:
        while True:
            order_id = f"{self._rng.getrandbits(128):032x}"
            if order_id not in self._used_ids:
                self._used_ids.add(order_id)
                return order_id

    def _marketplace_order_id(self, marketplace: str) -> str:
        bits = self._rng.getrandbits(64)
        if marketplace == "Amazon":
            return f"{111 + bits % 4}-{(bits >> 2) % 10**7:07d}-{(bits >> 30) % 10**7:07d}"
        if marketplace == "Walmart":
            return str(10**14 + bits % (9 * 10**14))
        if marketplace == "eBay":
            return f"{10 + bits % 18}-{bits >> 5 & 0xFFFF:05d}-{bits >> 21 & 0xFFFF:05d}"
        if marketplace == "Google":
            return f"G-SHP-{bits % 10000:04d}-{bits >> 14 & 63:02d}-{bits >> 20 & 8191:04d}"
        return str(10**9 + bits % (9 * 10**9))

    def _payment_method(self, marketplace: str) -> str | None:
        rng = self._rng
        if rng.random() < 0.04:
            return None
        if marketplace == "eBay" and rng.random() < 0.5:
            return "PayPal"
        return "Marketplace"

    def _pick(self, items):
        return items[int(self._rng.random() * len(items))]
