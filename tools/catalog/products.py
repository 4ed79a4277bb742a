"""The catalog's product families, category by category, and how their numbers follow from them.

Each family is written out by hand (brand, model, kind and the sizes it comes in); the seeded
random generator only varies what a real range varies: a few per cent of weight and price, the
fabric named in the description, whether it is in stock. The numbers follow the physics of the
kind, so the catalog is consistent the way a real one is: a tent for more people is heavier, a
colder sleeping bag is heavier and dearer, a bigger pack is heavier, a rain shell has a
hydrostatic head and a fleece has none.

Brands and names are invented; the store's own brand is "Ridgeline". ``Draft`` holds a raw
price; ``generate.py`` rounds it to a retail price and adds the euro price, the SKU and the URL.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Callable

BRANDS = ("Ridgeline", "Cairnwood", "Fellcraft", "Hollowfen", "Larchmere", "Skerrow", "Tarnside", "Wyndfell")

_WORDS = {1: "One", 2: "Two", 3: "Three", 4: "Four", 5: "Five", 6: "Six"}


@dataclass(frozen=True)
class Draft:
    """A product before pricing: ``price`` is the raw pound price, rounded later to a retail one."""

    name: str
    brand: str
    category: str
    price: float
    description: str
    weight_g: int | None = None
    capacity_persons: int | None = None
    temp_comfort_c: int | None = None
    waterproof_mm: int | None = None
    volume_l: float | None = None


def _jitter(rng: random.Random, value: float, spread: float) -> float:
    return value * (1 + rng.uniform(-spread, spread))


def _grams(value: float) -> int:
    return int(round(value / 5) * 5)


def _tents(rng: random.Random) -> list[Draft]:
    # kind -> (weight of the one-person size, grams per extra person, price base, price per person,
    #          hydrostatic head range, description)
    kinds = {
        "ultralight": (760, 470, 230, 85, (1500, 3000),
                       "{n}-person ultralight trekking-pole tent with a silicone-coated 15D nylon fly and a "
                       "{hh:,} mm hydrostatic head."),
        "backpacking": (1350, 650, 105, 55, (2000, 4000),
                        "{n}-person freestanding backpacking dome with aluminium poles, a 20D ripstop fly and a "
                        "{hh:,} mm hydrostatic head."),
        "mountain": (2300, 750, 380, 80, (4000, 5000),
                     "{n}-person four-season mountain tent with a low geodesic profile, snow valances and a "
                     "{hh:,} mm hydrostatic head."),
        "budget": (1500, 900, 40, 22, (1500, 2000),
                   "{n}-person polyester dome tent with fibreglass poles and a {hh:,} mm hydrostatic head, "
                   "made for summer campsites and festivals."),
        "family": (2000, 1500, 90, 55, (3000, 5000),
                   "{n}-person family tunnel tent with {rooms} bedrooms, a sewn-in groundsheet and a "
                   "{hh:,} mm hydrostatic head."),
    }
    extras = {
        "ultralight": ["Packs smaller than a one-litre water bottle.",
                       "Pitches fly-first, so the inner stays dry in rain.",
                       "Pitched with your trekking poles, so there are no tent poles to carry."],
        "backpacking": ["The inner clips to the fly and pitches with it in one go, staying dry in rain.",
                        "Colour-coded poles and reflective guy lines make pitching in the dark easy.",
                        "Packs small enough for a 40-litre rucksack."],
        "mountain": ["Crossing poles and a dozen guy points hold it steady in high winds.",
                     "A vented porch leaves room to cook out of the weather."],
        "budget": ["Pitches in about ten minutes.", "A good first tent for fair-weather weekends."],
        "family": ["A tall living area with big windows and room for a table.",
                   "Blackout bedrooms help children sleep past dawn.",
                   "Colour-coded poles make pitching in the dark easy."],
    }
    families = [
        ("Ridgeline", "Skyline", "ultralight", (1, 2, 3)), ("Fellcraft", "Wisp", "ultralight", (1, 2)),
        ("Skerrow", "Featherpitch", "ultralight", (1, 2)), ("Ridgeline", "Trailhead", "backpacking", (1, 2, 3)),
        ("Tarnside", "Corrie", "backpacking", (2, 3)), ("Hollowfen", "Bothy", "backpacking", (2, 3)),
        ("Wyndfell", "Gully", "backpacking", (2,)), ("Cairnwood", "Summit Dome", "mountain", (2, 3)),
        ("Ridgeline", "Stormcrest", "mountain", (2, 3)), ("Larchmere", "Fieldday", "budget", (2, 3, 4)),
        ("Wyndfell", "Meadowsweet", "budget", (2,)), ("Hollowfen", "Homestead", "family", (4, 5, 6)),
        ("Ridgeline", "Basecamp", "family", (4, 6)), ("Larchmere", "Lakeside", "family", (4, 5, 6)),
    ]
    drafts = []
    for brand, model, kind, sizes in families:
        first, per_person, price_base, price_per, (low, high), text = kinds[kind]
        for n in sizes:
            hh = rng.randrange(low, high + 1, 500)
            description = text.format(n=_WORDS[n], hh=hh, rooms=_WORDS[max(1, n // 2)].lower())
            drafts.append(Draft(
                name=f"{brand} {model} {n}", brand=brand, category="tent",
                price=_jitter(rng, price_base + price_per * n, 0.07),
                weight_g=_grams(_jitter(rng, first + per_person * (n - 1), 0.06)),
                capacity_persons=n, waterproof_mm=hh,
                description=f"{description} {rng.choice(extras[kind])}",
            ))
    return drafts


def _sleeping_bags(rng: random.Random) -> list[Draft]:
    families = [
        ("Cairnwood", "Ember", "down", "Mummy", (-2, -8, -15)),
        ("Ridgeline", "Nightjar", "down", "Mummy", (5, 0, -5, -10, -20)),
        ("Skerrow", "Featherdown", "down", "Tapered", (8, 2)),
        ("Tarnside", "Snowhole", "down", "Expedition mummy", (-12, -18)),
        ("Fellcraft", "Thistledown", "down", "Lightweight", (10, 4)),
        ("Larchmere", "Dusk", "synthetic", "Rectangular", (12, 8, 4, 0)),
        ("Hollowfen", "Hearth", "synthetic", "Mummy", (10, 5, 0, -5)),
        ("Ridgeline", "Bivouac", "synthetic", "Mummy", (6, -2, -7)),
        ("Wyndfell", "Campfire", "synthetic", "Rectangular", (12, 7)),
        ("Tarnside", "Bracken", "synthetic", "Tapered", (3, -4)),
    ]
    extras = [
        "Packs into the supplied compression sack; a cotton storage sack is included.",
        "A two-way zip opens it into a quilt on warm nights.",
        "Draught collar and a shaped hood seal the warmth in.",
        "The shell is treated to shed condensation from the tent walls.",
    ]
    drafts = []
    for brand, model, fill, shape, ratings in families:
        for t in ratings:
            colder = 12 - t
            if fill == "down":
                power = 600 if t >= 5 else 700 if t >= -8 else 800
                bird = "goose" if power == 800 else "duck"
                text = (f"{shape} down sleeping bag filled with {power} fill-power responsibly sourced {bird} down, "
                        f"comfort rated to {t} °C.")
                weight, price = 450 + colder * 38, 140 + colder * 11
            else:
                text = (f"{shape} synthetic sleeping bag with hollow-fibre insulation that stays warm when damp, "
                        f"comfort rated to {t} °C.")
                weight, price = 800 + colder * 58, 35 + colder * 4.5
            drafts.append(Draft(
                name=f"{brand} {model} {t}", brand=brand, category="sleeping_bag",
                price=_jitter(rng, price, 0.06), weight_g=_grams(_jitter(rng, weight, 0.05)),
                temp_comfort_c=t, description=f"{text} {rng.choice(extras)}",
            ))
    return drafts


def _sleeping_pads(rng: random.Random) -> list[Draft]:
    sizes = {"Short": (-90, "120 x 51 cm"), "Regular": (0, "183 x 51 cm"), "Long": (90, "196 x 64 cm"),
             "Wide": (140, "183 x 64 cm"), "XL": (260, "198 x 76 cm")}
    # kind -> (grams, grams per R, price, price per R, description)
    kinds = {
        "Air": (300, 55, 50, 22, "Insulated air pad with an R-value of {r}, {cm} cm of cushioning and a pump sack "
                                 "for inflating it."),
        "SI": (700, 160, 35, 12, "Self-inflating foam-core mat with an R-value of {r} and {cm} cm of open-cell "
                                 "foam for car camping and cold nights."),
        "Foam": (280, 40, 18, 6, "Closed-cell foam mat with an R-value of {r} that cannot puncture; it folds "
                                 "zigzag style and doubles as a sit mat."),
    }
    families = [
        ("Ridgeline", "Cloudrest", "Air", 4.2, ("Regular", "Long", "Wide")),
        ("Skerrow", "Drift", "Air", 2.1, ("Short", "Regular")),
        ("Fellcraft", "Stormloft", "Air", 6.5, ("Regular", "Long")),
        ("Skerrow", "Winterloft", "Air", 7.0, ("Regular",)),
        ("Hollowfen", "Deepsleep", "SI", 5.8, ("Regular", "Wide", "Long")),
        ("Larchmere", "Comfort", "SI", 3.2, ("Regular", "XL")),
        ("Tarnside", "Nest", "SI", 5.0, ("Regular",)),
        ("Ridgeline", "Deluxe", "SI", 6.0, ("XL",)),
        ("Cairnwood", "Zigzag", "Foam", 2.0, ("Short", "Regular")),
        ("Wyndfell", "Pebble", "Foam", 1.8, ("Regular",)),
    ]
    drafts = []
    for brand, model, kind, r, variants in families:
        grams, per_r, price, price_per_r, text = kinds[kind]
        cm = {"Air": 7, "SI": 5, "Foam": 2}[kind] + (3 if r >= 6 else 0)
        for size in variants:
            extra, dimensions = sizes[size]
            drafts.append(Draft(
                name=f"{brand} {model} {kind} {size}", brand=brand, category="sleeping_pad",
                price=_jitter(rng, (price + price_per_r * r) * (1 + extra / 1000), 0.03),
                weight_g=_grams(_jitter(rng, grams + per_r * r + extra * (2 if kind == "SI" else 1), 0.03)),
                description=f"{text.format(r=r, cm=cm)} {size} size, {dimensions}.",
            ))
    return drafts


def _backpacks(rng: random.Random) -> list[Draft]:
    # kind -> (grams, grams per litre, price, price per litre, description)
    kinds = {
        "day": (300, 16, 20, 1.6, "{v}-litre daypack in recycled 210D nylon with a padded back panel and a "
                                   "hydration sleeve."),
        "hiking": (500, 22, 30, 2.2, "{v}-litre hiking pack with a ventilated mesh back, a padded hip belt and "
                                     "a stowable rain cover."),
        "trekking": (800, 24, 60, 2.3, "{v}-litre trekking rucksack with an adjustable back length, a sleeping "
                                       "bag compartment and load lifters."),
        "ultralight": (300, 13, 80, 2.8, "{v}-litre ultralight pack in grid-reinforced ripstop with a removable "
                                         "frame sheet and roll-top closure."),
        "expedition": (1000, 28, 90, 2.6, "{v}-litre expedition rucksack with an aluminium frame, ice-axe loops "
                                          "and a lid that converts to a summit pack."),
    }
    extras = [
        "Side compression straps keep a half-full load stable.",
        "Stretch side pockets hold a one-litre bottle each.",
        "Hip belt pockets are big enough for a phone and snacks.",
        "Front zip gives access to the main compartment without unpacking.",
    ]
    families = [
        ("Ridgeline", "Scree", "hiking", (22, 32, 45)), ("Ridgeline", "Longtrail", "trekking", (55, 65, 75)),
        ("Fellcraft", "Skylark", "day", (18, 28)), ("Fellcraft", "Lightpath", "ultralight", (40, 50)),
        ("Tarnside", "Expedition", "expedition", (70, 85)), ("Cairnwood", "Rambler", "day", (15, 20, 25)),
        ("Skerrow", "Couloir", "hiking", (30, 38)), ("Hollowfen", "Wayfarer", "trekking", (45, 60)),
        ("Larchmere", "Pathfinder", "day", (20, 26)), ("Wyndfell", "Fellrunner", "ultralight", (15, 24)),
        ("Wyndfell", "Hillwalker", "hiking", (33, 48)), ("Cairnwood", "Drover", "trekking", (50, 65)),
        ("Skerrow", "Bigwall", "expedition", (80,)), ("Larchmere", "Weekender", "hiking", (35, 42)),
    ]
    drafts = []
    for brand, model, kind, volumes in families:
        grams, per_litre, price, price_per_litre, text = kinds[kind]
        for v in volumes:
            drafts.append(Draft(
                name=f"{brand} {model} {v}", brand=brand, category="backpack",
                price=_jitter(rng, price + price_per_litre * v, 0.07),
                weight_g=_grams(_jitter(rng, grams + per_litre * v, 0.05)), volume_l=v,
                description=f"{text.format(v=v)} {rng.choice(extras)}",
            ))
    return drafts


def _boots(rng: random.Random) -> list[Draft]:
    # cut -> (grams a pair, price, what it is)
    cuts = {"Low": (740, 85, "Low-cut hiking shoe"), "Mid": (1150, 130, "Mid-height hiking boot"),
            "Hi": (1750, 230, "Stiff high-cut mountain boot")}
    uppers = ["suede and mesh", "full-grain leather", "nubuck leather", "recycled polyester mesh"]
    soles = ["lugged rubber", "deep-lugged rubber", "grippy sticky-rubber", "heel-braking rubber"]
    families = [
        ("Ridgeline", "Crag", (("Mid", True), ("Low", True), ("Mid", False))),
        ("Tarnside", "Scarp", (("Mid", True), ("Hi", True))), ("Fellcraft", "Swift", (("Low", False), ("Low", True))),
        ("Cairnwood", "Heather", (("Mid", True), ("Mid", False))),
        ("Hollowfen", "Packhorse", (("Mid", True), ("Hi", True))), ("Skerrow", "Verglas", (("Hi", True),)),
        ("Larchmere", "Lane", (("Low", False), ("Mid", True))),
        ("Wyndfell", "Moorland", (("Mid", True), ("Mid", False), ("Hi", True))),
        ("Ridgeline", "Bealach", (("Hi", True),)), ("Tarnside", "Scamper", (("Low", False), ("Low", True))),
        ("Skerrow", "Ghyll", (("Low", False), ("Mid", True))), ("Cairnwood", "Shepherd", (("Hi", True),)),
        ("Fellcraft", "Dalesman", (("Mid", True),)), ("Hollowfen", "Ramble", (("Low", True), ("Mid", True))),
    ]
    drafts = []
    for brand, model, variants in families:
        upper, sole = rng.choice(uppers), rng.choice(soles)
        for cut, waterproof in variants:
            grams, price, what = cuts[cut]
            leather = "full-grain leather" if cut == "Hi" else upper
            membrane = ("a waterproof, breathable membrane" if waterproof
                        else "no membrane (not waterproof, quick to dry)")
            drafts.append(Draft(
                name=f"{brand} {model} {cut}{' WP' if waterproof else ''}", brand=brand, category="boots",
                price=_jitter(rng, price + (20 if waterproof else 0), 0.1),
                weight_g=_grams(_jitter(rng, grams + (60 if waterproof else 0), 0.07)),
                description=f"{what} with {membrane}, a {leather} upper and a {sole} sole. "
                            "Weight is per pair, UK size 8.",
            ))
    return drafts


def _jackets(rng: random.Random) -> list[Draft]:
    # kind -> (grams, price, hydrostatic head range or None, description)
    kinds = {
        "shell3": (390, 230, (20000, 30000), "Three-layer waterproof shell with a {hh:,} mm hydrostatic head, taped "
                                             "seams and a helmet-compatible hood."),
        "shell25": (270, 120, (10000, 20000), "Packable 2.5-layer rain jacket with a {hh:,} mm hydrostatic head and "
                                              "pit zips for venting on the climb."),
        "rain": (420, 40, (5000, 10000), "Budget waterproof jacket with a {hh:,} mm hydrostatic head, taped seams "
                                         "and a peaked hood."),
        "down": (420, 170, None, "Down jacket with 700 fill-power duck down in baffled chambers; warm, not "
                                 "waterproof, packs into its own pocket."),
        "synthetic": (480, 100, None, "Synthetic insulated jacket that stays warm when damp, with a windproof "
                                      "recycled nylon shell; not waterproof."),
        "fleece": (400, 40, None, "Mid-weight polyester fleece for layering under a shell; breathable, not "
                                  "waterproof."),
        "softshell": (470, 85, None, "Stretch softshell jacket that blocks wind and sheds showers; not "
                                     "waterproof in steady rain."),
    }
    extras = ["Two hand pockets sit above a hip belt.", "The hem and cuffs adjust with one hand.",
              "Made with recycled fabric and a PFC-free water-repellent finish.", "A chest pocket fits a map."]
    families = [
        ("Skerrow", "Squall Shell", "shell3"), ("Ridgeline", "Deluge Pro", "shell3"),
        ("Tarnside", "Cloudburst", "shell3"), ("Cairnwood", "Hailstone", "shell3"),
        ("Fellcraft", "Tempest Pro", "shell3"), ("Hollowfen", "Torrent", "shell3"),
        ("Ridgeline", "Drizzle Lite", "shell25"), ("Fellcraft", "Airlight Shell", "shell25"),
        ("Larchmere", "Spindrift", "shell25"), ("Wyndfell", "Packaway Shell", "shell25"),
        ("Skerrow", "Sleet", "shell25"), ("Tarnside", "Smirr", "shell25"),
        ("Larchmere", "Puddle", "rain"), ("Wyndfell", "Downpour", "rain"), ("Hollowfen", "Rainshade", "rain"),
        ("Ridgeline", "Essential Rain", "rain"), ("Cairnwood", "Brolly", "rain"),
        ("Cairnwood", "Loft Down Hoodie", "down"), ("Ridgeline", "Firecrest Down", "down"),
        ("Skerrow", "Belay Down Parka", "down"), ("Tarnside", "Snowline Down", "down"),
        ("Hollowfen", "Cosy Down Jacket", "down"), ("Fellcraft", "Stratus Insulated", "synthetic"),
        ("Wyndfell", "Shieling Insulated", "synthetic"), ("Ridgeline", "Cinder Insulated", "synthetic"),
        ("Larchmere", "Bramble Fleece", "fleece"), ("Wyndfell", "Heathland Fleece", "fleece"),
        ("Ridgeline", "Grid Fleece", "fleece"), ("Skerrow", "Scramble Softshell", "softshell"),
        ("Fellcraft", "Ridgeway Softshell", "softshell"),
    ]
    drafts = []
    for brand, model, kind in families:
        grams, price, heads, text = kinds[kind]
        hh = None
        if heads:
            low, high = heads
            hh = rng.randrange(low, high + 1, 1000 if high - low <= 5000 else 2500)
            price = price * (1 + 0.6 * (hh - low) / (high - low))
        if model.endswith("Parka"):
            grams, price = grams + 220, price + 110
        drafts.append(Draft(
            name=f"{brand} {model}", brand=brand, category="jacket", price=_jitter(rng, price, 0.08),
            weight_g=_grams(_jitter(rng, grams, 0.12)), waterproof_mm=hh,
            description=f"{text.format(hh=hh or 0)} {rng.choice(extras)}",
        ))
    return drafts


def _stoves(rng: random.Random) -> list[Draft]:
    # kind -> (grams, price, description); an integrated system has a pot (volume_l)
    kinds = {
        "canister": (85, 40, "Screw-on gas canister stove with folding pot supports and a piezo igniter; boils a "
                             "litre of water in about four minutes."),
        "integrated": (420, 120, "Integrated gas stove system with a {v:g}-litre insulated pot and a heat "
                                 "exchanger that saves fuel in wind."),
        "liquid": (380, 125, "Multi-fuel stove that burns white gas, petrol or paraffin, with a pump bottle, for "
                             "cold weather and remote trips."),
        "spirit": (160, 22, "Brass spirit burner that runs on methylated spirits, silent and with no moving "
                            "parts."),
        "wood": (320, 40, "Folding stainless steel wood-burning stove that also takes solid fuel tablets and a "
                          "spirit burner."),
    }
    families = [
        ("Ridgeline", "Spark Ti", "canister", None), ("Fellcraft", "Pocket Flame", "canister", None),
        ("Larchmere", "Gasburner", "canister", None), ("Skerrow", "Micro Jet", "canister", None),
        ("Ridgeline", "Boilpot 1.0", "integrated", 1.0), ("Tarnside", "Quickboil 1.8", "integrated", 1.8),
        ("Hollowfen", "Trailkettle 0.8", "integrated", 0.8), ("Cairnwood", "Arctic Multifuel", "liquid", None),
        ("Skerrow", "Polar Fuel", "liquid", None), ("Wyndfell", "Stillburn Spirit", "spirit", None),
        ("Larchmere", "Simmer Spirit", "spirit", None), ("Hollowfen", "Twig Box", "wood", None),
        ("Fellcraft", "Hobo Fold", "wood", None), ("Tarnside", "Breeze", "canister", None),
    ]
    drafts = []
    for brand, model, kind, volume in families:
        grams, price, text = kinds[kind]
        if volume:
            grams, price = grams + 80 * (volume - 1), price + 25 * (volume - 1)
        drafts.append(Draft(
            name=f"{brand} {model}", brand=brand, category="stove", price=_jitter(rng, price, 0.12),
            weight_g=_grams(_jitter(rng, grams, 0.12)), volume_l=volume,
            description=text.format(v=volume or 0),
        ))
    return drafts


def _headlamps(rng: random.Random) -> list[Draft]:
    families = [
        ("Ridgeline", "Glowworm", (200, 350)), ("Fellcraft", "Nightpath", (120, 300)),
        ("Skerrow", "Beacon", (600, 900)), ("Tarnside", "Lumen", (450, 1200)),
        ("Larchmere", "Campglow", (160, 250)), ("Hollowfen", "Owl", (400,)), ("Wyndfell", "Nightrunner", (500,)),
        ("Cairnwood", "Lantern Head", (750, 1000)),
    ]
    drafts = []
    for brand, model, outputs in families:
        for lumens in outputs:
            rechargeable = lumens >= 300 or rng.random() < 0.3
            power = "a USB-C rechargeable battery" if rechargeable else "three AAA batteries"
            drafts.append(Draft(
                name=f"{brand} {model} {lumens}", brand=brand, category="headlamp",
                price=_jitter(rng, 12 + lumens * 0.07 + (8 if rechargeable else 0), 0.08),
                weight_g=_grams(_jitter(rng, 30 + lumens * 0.1 + (15 if rechargeable else 0), 0.1)),
                description=f"{lumens}-lumen head torch with {power}, a red light mode and "
                            f"IPX{4 if lumens < 400 else 7} water resistance. "
                            f"The beam reaches {int(lumens * 0.2 + 30)} m on full power.",
            ))
    return drafts


def _trekking_poles(rng: random.Random) -> list[Draft]:
    # kind -> (grams a pair, price, description)
    kinds = {
        "alu": (560, 40, "Pair of telescopic aluminium trekking poles with flick-lock adjusters and cork grips"),
        "alu-fold": (480, 70, "Pair of folding aluminium trekking poles that collapse to 38 cm for packing"),
        "carbon": (420, 105, "Pair of telescopic carbon-fibre trekking poles with foam grips and flick locks"),
        "carbon-fold": (320, 140, "Pair of ultralight folding carbon-fibre poles for fast hikers and trail runners"),
    }
    families = [
        ("Ridgeline", "Trailstick Alu", "alu"), ("Ridgeline", "Trailstick Carbon", "carbon"),
        ("Fellcraft", "Featherstep Carbon", "carbon-fold"), ("Larchmere", "Stroller Alu", "alu"),
        ("Wyndfell", "Fellstride Fold", "alu-fold"), ("Tarnside", "Apex Carbon", "carbon"),
        ("Hollowfen", "Easywalk Alu", "alu"), ("Skerrow", "Skyrun Fold", "carbon-fold"),
        ("Cairnwood", "Glen Alu", "alu"), ("Tarnside", "Packfold Alu", "alu-fold"),
        ("Skerrow", "Ridge Carbon", "carbon"), ("Larchmere", "Compact Fold", "alu-fold"),
        ("Fellcraft", "Ascent Alu", "alu"), ("Cairnwood", "Highland Carbon", "carbon"),
    ]
    drafts = []
    for brand, model, kind in families:
        grams, price, text = kinds[kind]
        low = rng.choice((100, 105, 110))
        drafts.append(Draft(
            name=f"{brand} {model}", brand=brand, category="trekking_poles", price=_jitter(rng, price, 0.12),
            weight_g=_grams(_jitter(rng, grams, 0.07)),
            description=f"{text}, from {low} to {low + 35} cm. Weight is for the pair.",
        ))
    return drafts


def _water_filters(rng: random.Random) -> list[Draft]:
    # kind -> (grams, price, description); squeeze, bottle and gravity filters hold water (volume_l)
    kinds = {
        "squeeze": (80, 30, "Squeeze filter with a {v:g}-litre soft pouch and a 0.1-micron hollow-fibre cartridge "
                            "that removes bacteria and protozoa."),
        "bottle": (180, 40, "{v:g}-litre filter bottle with a 0.1-micron hollow-fibre filter in the lid: fill it "
                            "from a stream and drink."),
        "gravity": (320, 80, "Gravity filter with a {v:g}-litre hanging reservoir that filters water for a group "
                             "while you pitch camp."),
        "pump": (400, 95, "Pump filter with a ceramic cartridge that can be cleaned in the field, for shallow "
                          "pools and murky water."),
        "uv": (130, 75, "UV-C purifier pen that kills viruses, bacteria and protozoa in half a litre of clear "
                        "water in 90 seconds."),
        "straw": (50, 18, "Personal straw filter that removes bacteria and protozoa; drink straight from the "
                          "stream."),
    }
    families = [
        ("Ridgeline", "Brookline 1.0", "squeeze", 1.0), ("Tarnside", "Trickle 0.5", "squeeze", 0.5),
        ("Fellcraft", "Purewater 0.75", "bottle", 0.75), ("Larchmere", "Clearflow 1.0", "bottle", 1.0),
        ("Skerrow", "Burnside 0.6", "bottle", 0.6), ("Ridgeline", "Campwell Gravity 6", "gravity", 6.0),
        ("Hollowfen", "Rainbarrel 10", "gravity", 10.0), ("Wyndfell", "Gravity Drip 4", "gravity", 4.0),
        ("Cairnwood", "Spring Pump", "pump", None), ("Skerrow", "Deepwell Pump", "pump", None),
        ("Tarnside", "Brightwater UV", "uv", None), ("Fellcraft", "Sunbeam UV", "uv", None),
        ("Larchmere", "Sipstraw", "straw", None), ("Wyndfell", "Brook Straw", "straw", None),
    ]
    drafts = []
    for brand, model, kind, volume in families:
        grams, price, text = kinds[kind]
        if volume and kind == "gravity":
            grams, price = grams + 15 * volume, price + 3 * volume
        drafts.append(Draft(
            name=f"{brand} {model}", brand=brand, category="water_filter", price=_jitter(rng, price, 0.1),
            weight_g=_grams(_jitter(rng, grams, 0.1)), volume_l=volume, description=text.format(v=volume or 0),
        ))
    return drafts


def _cookware(rng: random.Random) -> list[Draft]:
    # material -> (grams, grams per litre, price, price per litre, description start)
    materials = {
        "titanium": (60, 90, 25, 25, "Titanium"),
        "aluminium": (200, 180, 20, 15, "Hard-anodised aluminium"),
        "steel": (150, 250, 12, 10, "Stainless steel"),
    }
    families = [
        ("Ridgeline", "Titan Mug 0.45", "titanium", "mug with folding handles", 0.45, 1),
        ("Fellcraft", "Solo Pot 0.75", "titanium", "pot with a lid that doubles as a strainer", 0.75, 1),
        ("Skerrow", "Duo Pot 1.1", "titanium", "pot with a lid and a mesh stuff sack", 1.1, 2),
        ("Tarnside", "Nesting Pot 1.3", "titanium", "pot that nests a 230 g gas canister", 1.3, 2),
        ("Ridgeline", "Camp Kitchen 2", "aluminium", "cook set: pot, frying pan and two bowls", 1.5, 2),
        ("Hollowfen", "Family Cook Set 4", "aluminium", "cook set: two pots, a frying pan and four bowls", 3.5, 4),
        ("Larchmere", "Trail Cook Set 3", "aluminium", "cook set: two nesting pots and a lid-pan", 2.5, 3),
        ("Cairnwood", "Fireside Pots 4", "aluminium", "cook set: 2.5- and 1.5-litre pots with a kettle", 4.0, 4),
        ("Wyndfell", "Brew Kettle 1.0", "aluminium", "kettle with a folding handle and pouring spout", 1.0, 2),
        ("Larchmere", "Brewhouse Kettle 1.5", "aluminium", "kettle that boils for a small group", 1.5, 3),
        ("Skerrow", "Pan 20", "aluminium", "non-stick frying pan, 20 cm across, with a folding handle", None, 2),
        ("Wyndfell", "Mess Tin Pair", "steel", "mess tins, a pair that nest together", 0.6, 1),
        ("Hollowfen", "Billy Can 1.2", "steel", "billy can with a bail handle for campfires", 1.2, 2),
        ("Fellcraft", "Ultralight Cook Set 2", "titanium", "cook set: pot, pan-lid and two sporks", 1.2, 2),
        ("Tarnside", "Group Pot 2.5", "aluminium", "pot for group meals with a locking handle", 2.5, 4),
        ("Cairnwood", "Chef Kit 2", "steel", "cook set: pot, frying pan, spatula and chopping board", 1.8, 2),
    ]
    drafts = []
    for brand, model, material, what, volume, persons in families:
        grams, per_litre, price, price_per_litre, start = materials[material]
        litres = volume if volume is not None else 0.8  # a pan weighs and costs about what a 0.8 l pot does
        size = f"{volume:g}-litre " if volume is not None else ""
        drafts.append(Draft(
            name=f"{brand} {model}", brand=brand, category="cookware",
            price=_jitter(rng, price + price_per_litre * litres, 0.1),
            weight_g=_grams(_jitter(rng, grams + per_litre * litres, 0.08)), volume_l=volume,
            capacity_persons=persons,
            description=f"{start} {size}{what}, for {persons} {'person' if persons == 1 else 'people'}.",
        ))
    return drafts


def _base_layers(rng: random.Random) -> list[Draft]:
    # fabric -> (grams for a 200 gsm top, price, description)
    fabrics = {
        "merino": (220, 70, "{gsm} g/m² merino wool {cut}; merino stays warm when damp and resists odour on multi-day "
                            "trips."),
        "blend": (190, 50, "{gsm} g/m² merino and polyester blend {cut}, softer than pure synthetic and quicker to "
                           "dry than wool."),
        "synthetic": (170, 28, "{gsm} g/m² wicking polyester {cut}; the fabric moves sweat off the skin and "
                               "dries fast."),
    }
    cuts = {"Crew": ("crew-neck top", 1.0), "Zip Neck": ("zip-neck top", 1.08), "Leggings": ("leggings", 0.85),
            "Hoody": ("hooded top", 1.15)}
    families = [
        ("Larchmere", "Merino", "merino", 200, ("Crew", "Leggings")), ("Ridgeline", "Merino", "merino", 250,
                                                                        ("Zip Neck", "Leggings", "Crew")),
        ("Fellcraft", "Merino", "merino", 150, ("Crew",)), ("Skerrow", "Merino Blend", "blend", 180, ("Hoody", "Crew")),
        ("Wyndfell", "Wicking", "synthetic", 140, ("Crew", "Zip Neck")),
        ("Hollowfen", "Thermal", "synthetic", 200, ("Leggings", "Crew")),
        ("Tarnside", "Alpine Blend", "blend", 230, ("Zip Neck", "Leggings")), ("Cairnwood", "Merino", "merino", 200,
                                                                                ("Hoody",)),
    ]
    drafts = []
    for brand, model, fabric, gsm, variants in families:
        grams, price, text = fabrics[fabric]
        for cut in variants:
            what, factor = cuts[cut]
            drafts.append(Draft(
                name=f"{brand} {model} {gsm} {cut}", brand=brand, category="base_layer",
                price=_jitter(rng, price * factor * (0.6 + 0.2 * gsm / 100), 0.08),
                weight_g=_grams(_jitter(rng, grams * factor * gsm / 200, 0.06)),
                description=f"{text.format(gsm=gsm, cut=what)} Weight for size M.",
            ))
    return drafts


# In the file's order: the categories of ridgeline.catalog.CATEGORIES, one builder each.
BUILDERS: dict[str, Callable[[random.Random], list[Draft]]] = {
    "tent": _tents, "sleeping_bag": _sleeping_bags, "sleeping_pad": _sleeping_pads, "backpack": _backpacks,
    "boots": _boots, "jacket": _jackets, "stove": _stoves, "headlamp": _headlamps,
    "trekking_poles": _trekking_poles, "water_filter": _water_filters, "cookware": _cookware,
    "base_layer": _base_layers,
}
