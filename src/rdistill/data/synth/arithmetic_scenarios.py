"""The word-problem scenarios of the arithmetic family: sentence templates per operation.

Two styles:
- "stock": one running quantity (cookies in a bakery, dollars in an account) that each step changes;
- "chain": a series of entities, each described relative to the previous one ("Leo has 3 more than Ava").

Placeholders: {name} {P} {p} {pos} {Pos} {obj} (a person), {items}, {n} (the step's quantity, digits),
{k} (multiplier/divisor, digits), {times} ("twice" / "3 times"), {fraction} ("half" / "a third"),
{A} and {B} (previous and current entity, chain style). Every quantity of a question comes from {n}, {k},
{times} or {fraction}: the templates themselves contain no other number, not even an ordinal like
"second" or "third", so a question states exactly the numbers its solution uses.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

OPERATIONS: tuple[str, ...] = ("+", "-", "×", "÷")
MAX_STEPS = 8

# Multiplying or splitting a count of things reads the same in most stock scenarios.
GENERIC_MUL = (
    "Later, {p} ends up with {times} as many {items} as {p} had at that point.",
    "By the end of the week, {pos} number of {items} has grown to {times} what it was.",
)
GENERIC_DIV = (
    "{P} then splits the {items} into {k} equal groups and keeps only one group.",
    "{P} keeps {fraction} of the {items} and gives the rest away.",
)


@dataclass(frozen=True)
class Scenario:
    key: str
    style: str  # "stock" or "chain"
    start: tuple[str, ...]
    add: tuple[str, ...]
    sub: tuple[str, ...]
    mul: tuple[str, ...]
    div: tuple[str, ...]
    question: tuple[str, ...]
    items: tuple[str, ...] = ("",)
    entities: tuple[str, ...] = ()  # chain style: the series to draw from; empty means people's names
    consecutive: bool = False  # chain style: entities form an ordered series (days, months)
    start_range: tuple[int, int] = (8, 120)
    operand_max: int = 60
    signed: bool = False  # a negative value still makes sense (a score, a bank balance)
    fractional: bool = False  # a value like 12.5 still makes sense (money, liters, km)

    def phrases(self, op: str) -> tuple[str, ...]:
        return {"+": self.add, "-": self.sub, "×": self.mul, "÷": self.div}[op]

    @functools.cached_property
    def operations(self) -> tuple[str, ...]:
        return tuple(op for op in OPERATIONS if self.phrases(op))

    @functools.cached_property
    def max_steps(self) -> int:
        if self.style == "chain" and self.entities:
            return min(MAX_STEPS, len(self.entities) - 1)
        return MAX_STEPS


_DAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
_MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
           "November", "December")

STOCK = (
    Scenario(
        key="bakery", style="stock",
        items=("cookies", "muffins", "cupcakes", "bagels", "rolls", "croissants"),
        start=("{name} bakes {n} {items} for the school fair.",
               "On Saturday morning, {name} has {n} {items} in {pos} bakery.",
               "{name} starts the day with {n} fresh {items}."),
        add=("{P} bakes {n} more {items}.",
             "Another tray of {n} {items} comes out of {pos} oven.",
             "Then {p} bakes another {n}."),
        sub=("{P} sells {n} of them.",
             "Customers buy {n} {items}.",
             "{n} of the {items} fall on the floor and are thrown away."),
        mul=("For a big order, {p} keeps baking until {p} has {times} as many {items} as before.",) + GENERIC_MUL,
        div=("{P} packs the {items} equally into {k} boxes, keeps one box and sends the others to a café.",)
        + GENERIC_DIV,
        question=("How many {items} does {name} have now?", "How many {items} does {name} have at the end?"),
    ),
    Scenario(
        key="savings", style="stock", signed=True, fractional=True, start_range=(20, 400), operand_max=200,
        start=("{name} has ${n} in {pos} savings account.",
               "{name} opens a bank account with ${n}."),
        add=("{P} deposits ${n} from {pos} paycheck.",
             "{P} gets ${n} as a birthday gift and puts it in the account.",
             "{P} adds ${n} to the account."),
        sub=("{P} withdraws ${n}.",
             "{P} pays a bill of ${n} from the account.",
             "{P} spends ${n} on a new jacket."),
        mul=("After a lucky investment, the balance grows to {times} what it was.",
             "Thanks to a matching scheme at work, the balance becomes {times} as large."),
        div=("{P} donates to charity until only {fraction} of the balance is left.",
             "{P} splits the balance equally among {k} envelopes and leaves just one envelope's worth "
             "in the account."),
        question=("How much money, in dollars, is in the account now?",
                  "How many dollars does {name} have in the account at the end?"),
    ),
    Scenario(
        key="farm", style="stock",
        items=("sheep", "goats", "chickens", "ducks", "cows", "rabbits"),
        start=("A farmer named {name} has {n} {items}.",
               "{name}'s farm has {n} {items}."),
        add=("{P} buys {n} more {items} at the market.",
             "{P} gets {n} more {items} from a neighbour.",
             "In spring, {n} more {items} join the farm."),
        sub=("{P} sells {n} {items}.",
             "{n} of the {items} wander off and are never found.",
             "{P} gives {n} {items} to {pos} cousin."),
        mul=GENERIC_MUL,
        div=("{P} divides the {items} into {k} equal groups and sells every group but one.",) + GENERIC_DIV,
        question=("How many {items} does {name} have now?", "How many {items} are on the farm now?"),
    ),
    Scenario(
        key="library", style="stock",
        items=("books", "novels", "comics", "magazines", "atlases"),
        start=("A small library has {n} {items}.",
               "The school library owns {n} {items}."),
        add=("It receives a donation of {n} {items}.",
             "The librarian, {name}, orders {n} new {items}.",
             "{n} more {items} arrive in a delivery."),
        sub=("{n} {items} are too damaged to keep and are thrown out.",
             "The library gives {n} {items} to another school.",
             "{n} {items} are borrowed and never returned."),
        mul=("After a big fundraiser, the library has {times} as many {items} as before.",
             "A merger with another library leaves it with {times} as many {items} as before."),
        div=("The library splits its {items} equally among {k} branches and keeps one share in this building.",
             "The library keeps {fraction} of its {items} and sends the rest to a book sale."),
        question=("How many {items} does the library have now?",
                  "How many {items} are in the library at the end?"),
    ),
    Scenario(
        key="orchard", style="stock",
        items=("apples", "pears", "oranges", "plums", "peaches", "lemons"),
        start=("{name} picks {n} {items} in the orchard.",
               "{name} has a basket with {n} {items}."),
        add=("{P} picks {n} more.",
             "{Pos} friend hands {obj} another {n} {items}.",
             "{P} finds {n} more {items} under a tree."),
        sub=("{P} eats {n} of them.",
             "{n} of the {items} are bruised, so {p} throws them away.",
             "{P} gives {n} {items} to a neighbour."),
        mul=GENERIC_MUL,
        div=("{P} shares the {items} equally among {k} people, including {obj}self.",) + GENERIC_DIV,
        question=("How many {items} does {name} have now?", "How many {items} are in {name}'s basket now?"),
    ),
    Scenario(
        key="collection", style="stock",
        items=("stamps", "stickers", "trading cards", "marbles", "seashells", "postcards"),
        start=("{name} has a collection of {n} {items}.",
               "{name} owns {n} {items}."),
        add=("{P} buys {n} more {items}.",
             "{P} finds {n} {items} at a flea market.",
             "For {pos} birthday, {p} gets {n} {items}."),
        sub=("{P} trades away {n} {items}.",
             "{P} gives {n} {items} to {pos} little brother.",
             "{P} loses {n} {items} on a trip."),
        mul=("A collector friend gives {obj} enough {items} to have {times} as many as before.",) + GENERIC_MUL,
        div=("{P} shares the {items} equally among {k} people, including {obj}self.",) + GENERIC_DIV,
        question=("How many {items} does {name} have now?", "How many {items} are in {name}'s collection now?"),
    ),
    Scenario(
        key="warehouse", style="stock", start_range=(40, 400), operand_max=150,
        items=("boxes", "crates", "parcels", "pallets", "sacks of rice"),
        start=("A warehouse holds {n} {items}.",
               "At the start of the shift, the warehouse has {n} {items}."),
        add=("A truck delivers {n} more {items}.",
             "Workers unload another {n} {items}.",
             "{n} {items} come in from the port."),
        sub=("{n} {items} are shipped to stores.",
             "A van takes away {n} {items}.",
             "{n} {items} are sent to a customer."),
        mul=("A busy week leaves the warehouse with {times} as many {items} as before.",
             "After a big order arrives, there are {times} as many {items} as before."),
        div=("The manager, {name}, splits the {items} into {k} equal loads, ships all of them except one, "
             "and keeps that one in the warehouse.",
             "Only {fraction} of the {items} stay; the rest are moved to a new building."),
        question=("How many {items} are in the warehouse now?",),
    ),
    Scenario(
        key="factory", style="stock", start_range=(20, 300), operand_max=120,
        items=("toy cars", "bottles", "chairs", "bicycles", "lamps", "backpacks"),
        start=("A factory has {n} {items} in stock.",
               "On Monday, a workshop has {n} finished {items}."),
        add=("The workers build {n} more {items}.",
             "The night shift produces {n} {items}.",
             "{n} more {items} come off the assembly line."),
        sub=("{n} {items} fail inspection and are scrapped.",
             "A customer orders {n} {items}, which are shipped right away.",
             "{n} {items} are sent to a shop in town."),
        mul=("A new machine lets the factory end up with {times} as many {items} as before.",
             "After an overtime week, the stock is {times} what it was."),
        div=("The {items} are loaded equally onto {k} trucks, and only one truck's load stays behind.",
             "A big client takes all but {fraction} of the {items}."),
        question=("How many {items} are in stock now?", "How many {items} are left at the factory?"),
    ),
    Scenario(
        key="passengers", style="stock", start_range=(10, 80), operand_max=40,
        items=("passengers",),
        start=("A bus leaves the depot with {n} passengers.",
               "A train starts its route with {n} passengers on board."),
        add=("At the next stop, {n} people get on.",
             "{n} more passengers board at the market.",
             "A school group of {n} gets on."),
        sub=("At the next stop, {n} passengers get off.",
             "{n} people leave at the museum stop.",
             "{n} passengers get off near the park."),
        mul=("At the stadium, so many fans get on that there are {times} as many passengers as before.",
             "At the concert hall, the crowd that boards leaves {times} as many passengers on board."),
        div=("At the central station, all but {fraction} of the passengers get off.",
             "At the airport, everyone gets off except {fraction} of the passengers."),
        question=("How many passengers are on board now?", "How many passengers are on board at the end?"),
    ),
    Scenario(
        key="fundraiser", style="stock", start_range=(50, 500), operand_max=200,
        start=("A school raises ${n} at a bake sale run by {name}.",
               "{name} collects ${n} for a charity run."),
        add=("A local shop donates ${n}.",
             "{name} collects another ${n} from neighbours.",
             "An online appeal brings in ${n}."),
        sub=("${n} is spent on posters.",
             "${n} goes to pay for the event permit.",
             "The team spends ${n} on T-shirts."),
        mul=("A generous sponsor makes the total {times} as large.",
             "A matching grant brings the total to {times} what it was."),
        div=(),
        question=("How many dollars have been raised now?", "How much money, in dollars, is there at the end?"),
    ),
    Scenario(
        key="water_tank", style="stock", fractional=True, start_range=(20, 400), operand_max=100,
        start=("A rain barrel holds {n} liters of water.",
               "A water tank contains {n} liters."),
        add=("A storm adds {n} liters.",
             "{name} pours in another {n} liters.",
             "A hose fills in {n} more liters."),
        sub=("{name} uses {n} liters to water the garden.",
             "{n} liters leak out through a crack.",
             "{n} liters evaporate in the sun."),
        mul=("A pump fills it until it holds {times} as much water as before.",
             "Heavy rain leaves it with {times} as much water as before."),
        div=("{name} drains it until only {fraction} of the water is left.",
             "All but {fraction} of the water is pumped out for the fields."),
        question=("How many liters of water does it hold now?", "How many liters are in it at the end?"),
    ),
    Scenario(
        key="garden", style="stock",
        items=("seedlings", "tulip bulbs", "tomato plants", "sunflowers", "herb pots"),
        start=("{name} grows {n} {items} in a greenhouse.",
               "{name} plants {n} {items} in {pos} garden."),
        add=("{P} plants {n} more.",
             "{P} buys {n} {items} at the market.",
             "A neighbour gives {obj} {n} {items}."),
        sub=("Rabbits eat {n} of the {items}.",
             "{P} gives {n} {items} to a friend.",
             "{n} {items} wilt in the heat."),
        mul=GENERIC_MUL,
        div=GENERIC_DIV,
        question=("How many {items} does {name} have now?",),
    ),
    Scenario(
        key="parking", style="stock", start_range=(20, 200), operand_max=60,
        items=("cars",),
        start=("A parking garage has {n} cars in it at noon.",
               "A parking lot holds {n} cars in the morning."),
        add=("{n} more cars drive in.",
             "A tour group arrives in {n} cars.",
             "{n} cars park there for a concert."),
        sub=("{n} cars leave.",
             "{n} drivers pick up their cars and go home.",
             "{n} cars drive away."),
        mul=(),
        div=("In the evening, all but {fraction} of the cars leave.",
             "When the show ends, only {fraction} of the cars stay."),
        question=("How many cars are parked there now?",),
    ),
    Scenario(
        key="fuel", style="stock", fractional=True, start_range=(20, 80), operand_max=40,
        start=("{name}'s car has {n} liters of fuel in the tank.",
               "{name} starts a road trip with {n} liters of fuel."),
        add=("{P} stops and buys {n} liters of fuel.",
             "{P} fills in another {n} liters at a station."),
        sub=("The drive to the coast uses {n} liters.",
             "{P} burns {n} liters driving through the mountains.",
             "A traffic jam costs {obj} {n} liters."),
        mul=(),
        div=("A long detour leaves only {fraction} of the fuel in the tank.",
             "{P} siphons fuel into a can until only {fraction} of it is left in the tank."),
        question=("How many liters of fuel are left in the tank?",),
    ),
    Scenario(
        key="classroom", style="stock",
        items=("pencils", "crayons", "erasers", "markers", "notebooks"),
        start=("{name}, a teacher, has {n} {items} in a drawer.",
               "{name} keeps {n} {items} in the classroom cupboard."),
        add=("{P} buys a pack of {n} {items}.",
             "The school office sends {obj} {n} more {items}.",
             "Parents donate {n} {items}."),
        sub=("{P} hands out {n} {items} to students.",
             "{n} {items} go missing.",
             "{P} lends {n} {items} to another class."),
        mul=GENERIC_MUL,
        div=("{P} shares the {items} equally among {k} classrooms and keeps one share.",) + GENERIC_DIV,
        question=("How many {items} does {name} have now?",),
    ),
    Scenario(
        key="number_game", style="stock", signed=True, fractional=True, start_range=(2, 60), operand_max=40,
        start=("{name} thinks of the number {n}.",
               "{name} writes the number {n} on a whiteboard."),
        add=("{P} adds {n} to it.", "Then {p} adds {n}."),
        sub=("{P} subtracts {n}.", "Next, {p} takes away {n}."),
        mul=("{P} multiplies the result by {k}.", "{P} then multiplies by {k}."),
        div=("{P} divides the result by {k}.", "Then {p} divides by {k}."),
        question=("What number does {name} end up with?", "What is the final number?"),
    ),
)

CHAIN = (
    Scenario(
        key="friends_compare", style="chain",
        items=("marbles", "stickers", "stamps", "seashells", "comic books", "baseball cards"),
        start=("{A} has {n} {items}.", "{A} owns {n} {items}."),
        add=("{B} has {n} more {items} than {A}.", "{B} has {n} {items} more than {A} does."),
        sub=("{B} has {n} fewer {items} than {A}.", "{B} owns {n} {items} fewer than {A}."),
        mul=("{B} has {times} as many {items} as {A}.",),
        div=("{B} has {fraction} as many {items} as {A}.",),
        question=("How many {items} does {B} have?",),
    ),
    Scenario(
        key="monthly_sales", style="chain", entities=_MONTHS, consecutive=True, start_range=(20, 300),
        operand_max=100,
        items=("umbrellas", "bicycles", "laptops", "pizzas", "plants", "kites"),
        start=("In {A}, a shop sells {n} {items}.", "A shop sells {n} {items} in {A}."),
        add=("In {B}, it sells {n} more {items} than in {A}.",),
        sub=("In {B}, it sells {n} fewer {items} than in {A}.",),
        mul=("In {B}, sales are {times} what they were in {A}.",),
        div=("In {B}, it sells only {fraction} as many {items} as in {A}.",),
        question=("How many {items} does the shop sell in {B}?",),
    ),
    Scenario(
        key="daily_distance", style="chain", entities=_DAYS, consecutive=True, fractional=True,
        start_range=(3, 40), operand_max=20,
        items=("cycles", "runs", "hikes", "walks"),
        start=("On {A}, {name} {items} {n} km.",),
        add=("On {B}, {p} {items} {n} km more than on {A}.",),
        sub=("On {B}, {p} {items} {n} km less than on {A}.",),
        mul=("On {B}, {p} {items} {times} as far as on {A}.",),
        div=("On {B}, {p} {items} only {fraction} as far as on {A}.",),
        question=("How many km does {name} cover on {B}?", "How far, in km, does {name} go on {B}?"),
    ),
    Scenario(
        key="prices", style="chain", fractional=True, start_range=(4, 90), operand_max=40,
        entities=("notebook", "backpack", "lamp", "mug", "scarf", "teapot", "clock", "wallet", "kettle",
                  "candle", "pillow", "blanket", "basket", "jacket"),
        start=("At a market, a {A} costs ${n}.", "A {A} costs ${n} at a gift shop."),
        add=("A {B} costs ${n} more than the {A}.",),
        sub=("A {B} costs ${n} less than the {A}.",),
        mul=("A {B} costs {times} as much as the {A}.",),
        div=("A {B} costs {fraction} as much as the {A}.",),
        question=("How many dollars does a {B} cost?", "What is the price of a {B}, in dollars?"),
    ),
    Scenario(
        key="farm_animals", style="chain",
        entities=("cows", "pigs", "chickens", "goats", "sheep", "ducks", "horses", "rabbits", "geese",
                  "turkeys", "llamas"),
        start=("{name}'s farm has {n} {A}.", "There are {n} {A} on {name}'s farm."),
        add=("It has {n} more {B} than {A}.",),
        sub=("It has {n} fewer {B} than {A}.",),
        mul=("It has {times} as many {B} as {A}.",),
        div=("It has {fraction} as many {B} as {A}.",),
        question=("How many {B} are on the farm?",),
    ),
    Scenario(
        key="school_clubs", style="chain", start_range=(6, 60), operand_max=20,
        entities=("chess", "drama", "robotics", "art", "music", "science", "debate", "photography",
                  "gardening", "coding", "dance"),
        start=("The {A} club at {name}'s school has {n} members.",),
        add=("The {B} club has {n} more members than the {A} club.",),
        sub=("The {B} club has {n} fewer members than the {A} club.",),
        mul=("The {B} club has {times} as many members as the {A} club.",),
        div=("The {B} club has {fraction} as many members as the {A} club.",),
        question=("How many members does the {B} club have?",),
    ),
    Scenario(
        key="production_lines", style="chain", start_range=(20, 400), operand_max=100,
        entities=("red", "blue", "green", "yellow", "orange", "purple", "white", "black", "silver", "gray"),
        start=("In a toy factory, the {A} line packs {n} boxes in a day.",),
        add=("The {B} line packs {n} more boxes than the {A} line.",),
        sub=("The {B} line packs {n} fewer boxes than the {A} line.",),
        mul=("The {B} line packs {times} as many boxes as the {A} line.",),
        div=("The {B} line packs {fraction} as many boxes as the {A} line.",),
        question=("How many boxes does the {B} line pack in a day?",),
    ),
    Scenario(
        key="game_scores", style="chain", signed=True, start_range=(5, 90), operand_max=40,
        start=("In a board game, {A} scores {n} points.", "{A} scores {n} points in a quiz."),
        add=("{B} scores {n} points more than {A}.",),
        sub=("{B} scores {n} points fewer than {A}.",),
        mul=("{B} scores {times} as many points as {A}.",),
        div=("{B} scores {fraction} as many points as {A}.",),
        question=("How many points does {B} score?",),
    ),
    Scenario(
        key="temperatures", style="chain", signed=True, start_range=(2, 35), operand_max=15,
        entities=("Oslo", "Cairo", "Lima", "Denver", "Madrid", "Seoul", "Nairobi", "Dublin", "Quito", "Perth",
                  "Toronto"),
        start=("At noon, it is {n} degrees in {A}.",),
        add=("{B} is {n} degrees warmer than {A}.",),
        sub=("{B} is {n} degrees colder than {A}.",),
        mul=(),
        div=(),
        question=("What is the temperature in {B}, in degrees?",),
    ),
)

SCENARIOS: tuple[Scenario, ...] = STOCK + CHAIN
