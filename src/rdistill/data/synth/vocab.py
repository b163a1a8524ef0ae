"""Word lists the task families draw from. Tuples, not sets: draw order must not depend on hashing."""

from __future__ import annotations

from typing import NamedTuple


class Person(NamedTuple):
    name: str
    subject: str  # he / she
    possessive: str  # his / her
    object: str  # him / her


_FEMALE = (
    "Ava", "Mia", "Zoe", "Lena", "Nora", "Ruth", "Priya", "Sofia", "Hana", "Aisha", "Grace", "Ivy", "Chloe",
    "Maya", "Elena", "Fatima", "Julia", "Rosa", "Emma", "Leila", "Yuki", "Clara", "Nina", "Olivia", "Sara",
    "Tara", "Amara", "Bea", "Carmen", "Dana", "Ines", "Mei", "Lucy", "Freya", "Alice", "Kate", "Wendy",
)
_MALE = (
    "Liam", "Noah", "Omar", "Ravi", "Leo", "Ben", "Diego", "Kenji", "Mateo", "Ethan", "Jonas", "Tom", "Arjun",
    "Felix", "Hugo", "Ivan", "Jamal", "Kofi", "Luca", "Max", "Nikhil", "Oscar", "Pablo", "Raj", "Theo",
    "Victor", "Wei", "Yusuf", "Aaron", "Carlos", "Daniel", "Emil", "Farid", "George", "Henry", "Isaac", "Juan",
)

PEOPLE: tuple[Person, ...] = tuple(
    [Person(n, "she", "her", "her") for n in _FEMALE] + [Person(n, "he", "his", "him") for n in _MALE])

# For last-letter concatenation, as in Wei et al. (2022): full names, first then last.
FIRST_NAMES: tuple[str, ...] = _FEMALE + _MALE + (
    "Elon", "Larry", "Bill", "Steve", "Serena", "Barack", "Angela", "Frida", "Pedro", "Ursula", "Boris",
    "Marta", "Gustav", "Helga", "Ingrid", "Jasper", "Karim", "Lorenzo", "Magnus", "Odette", "Quentin",
    "Rupert", "Sven", "Tamsin", "Umar", "Vera", "Xavier", "Yasmin", "Zelda", "Abel", "Bruno", "Celia",
    "Dmitri", "Esther", "Flavia", "Gideon", "Hector", "Irene", "Joaquin", "Keith", "Lorna", "Miriam",
    "Nadia", "Otto", "Petra", "Quincy", "Reuben", "Selma", "Tobias", "Ulrich",
)
LAST_NAMES: tuple[str, ...] = (
    "Musk", "Page", "Gates", "Jobs", "Williams", "Obama", "Merkel", "Kahlo", "Smith", "Johnson", "Brown",
    "Garcia", "Miller", "Davis", "Rodriguez", "Martinez", "Lopez", "Wilson", "Anderson", "Thomas", "Moore",
    "Jackson", "Martin", "Lee", "Thompson", "White", "Harris", "Clark", "Lewis", "Walker", "Hall", "Young",
    "King", "Wright", "Scott", "Green", "Baker", "Adams", "Nelson", "Hill", "Campbell", "Mitchell", "Roberts",
    "Carter", "Phillips", "Evans", "Turner", "Torres", "Parker", "Collins", "Edwards", "Stewart", "Morris",
    "Murphy", "Cook", "Rogers", "Morgan", "Cooper", "Peterson", "Reed", "Bailey", "Bell", "Gomez", "Kelly",
    "Howard", "Ward", "Cox", "Diaz", "Richardson", "Wood", "Watson", "Brooks", "Bennett", "Gray", "James",
    "Reyes", "Cruz", "Hughes", "Price", "Myers", "Long", "Foster", "Sanders", "Ross", "Morales", "Powell",
    "Sullivan", "Russell", "Ortiz", "Jenkins", "Perry", "Butler", "Barnes", "Fisher", "Henderson", "Coleman",
    "Simmons", "Patterson", "Jordan", "Reynolds", "Hamilton", "Graham", "Kim", "Gonzalez", "Alexander",
    "Ramos", "Wallace", "Griffin", "West", "Cole", "Hayes", "Chavez", "Gibson", "Bryant", "Ellis", "Stevens",
    "Murray", "Ford", "Marshall", "Owens", "Tanaka", "Nakamura", "Singh", "Kumar", "Nguyen", "Okafor",
)


def pronoun_fields(person: Person) -> dict[str, str]:
    """Placeholders for sentence templates: {name} {P} {p} {pos} {Pos} {obj}."""
    return {
        "name": person.name,
        "P": person.subject.capitalize(),
        "p": person.subject,
        "pos": person.possessive,
        "Pos": person.possessive.capitalize(),
        "obj": person.object,
    }
