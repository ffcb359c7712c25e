"""The attribute-level rule for invalid characters in a synchronized entry (LDAP or PBX).

A bad value in the login, the names or the stable identifier drops the entry; in another
field the appliance stores (e-mail, phone, department) it drops that field, with a note;
in a field it does not store (title, mobile, anything unmapped) it is ignored.
"""

from appliance.validation import bad_char

#: Fields whose bad value drops the entry: without them there is no account.
IDENTITY = ("external_id", "login", "first_name", "last_name")
#: Optional fields an account stores: a bad value empties the field, the entry stays.
STORED = ("email", "phone", "department")
RANGES = "outside 0x9, 0xA, 0xD, 0x20-0xD7FF, 0xE000-0xFFFD, 0x10000-0x10FFFF"


def clean(mapped: dict, report, entry: str, mapping: dict) -> dict | None:
    """`mapped` (field -> value) with the rule applied, or None (skipped on `report`).

    `entry` names the entry in the report (a DN, a line and number); `mapping` gives the
    directory attribute (or column) of each field, for the report."""
    out = dict(mapped)
    for name, value in mapped.items():
        if name == "dn" or not isinstance(value, str) or (char := bad_char(value)) is None:
            continue
        attribute = mapping.get(name) or name
        if name in IDENTITY:
            report.skip(entry, attribute, f"value has the invalid character {char} ({RANGES})")
            return None
        if name in STORED:
            report.note(entry, attribute, f"value has the invalid character {char} "
                        f"({RANGES}): the {name.replace('_', ' ')} is left empty, the entry "
                        "is kept")
        out[name] = ""
    return out
