"""Network elements and users: the one place that validates and stores them.

Pages, the API, bulk import, IDS and the management-platform endpoint all go through these
functions, so a rule (a licence, a department in use, a platform's methods) holds everywhere.
Each concern has its module; this one names what callers use.
"""

from .elements import (
    ELEMENT_COLUMNS,
    delete_element,
    element_dict,
    element_for_token,
    element_impact,
    elements,
    ids_running,
    new_platform_token,
    not_seeding,
    remove_ids,
    save_element,
    seeded,
    undelivered,
    users_by_element,
)
from .licences import Licences, in_use, licences, set_licences
from .rules import (
    ELEMENT,
    ELEMENT_UPDATE,
    NAMED,
    NONE,
    SERVICES,
    TEMPLATE,
    USER,
    by_name,
    import_cells,
    services_of,
)
from .sites import delete_named, named, named_columns, named_dict, save_named, used_by
from .user_templates import (
    TEMPLATE_COLUMNS,
    delete_template,
    save_template,
    template_dict,
    templates,
)
from .users import (
    USER_COLUMNS,
    SiteTables,
    delete_user,
    flow_actions,
    queue,
    resolve_user,
    save_user,
    snapshot,
    user_dict,
    user_form,
    users,
)

__all__ = [
    "ELEMENT", "ELEMENT_COLUMNS", "ELEMENT_UPDATE", "Licences", "NAMED", "NONE", "SERVICES",
    "SiteTables", "TEMPLATE", "TEMPLATE_COLUMNS", "USER", "USER_COLUMNS", "by_name",
    "delete_element", "delete_named", "delete_template", "delete_user", "element_dict",
    "element_for_token", "element_impact", "elements", "flow_actions", "ids_running",
    "import_cells", "in_use", "licences", "named", "named_columns", "named_dict",
    "new_platform_token", "not_seeding", "queue", "remove_ids", "resolve_user", "save_element",
    "save_named", "save_template", "save_user", "seeded", "services_of", "set_licences", "snapshot",
    "template_dict", "templates", "undelivered", "used_by", "user_dict", "user_form", "users",
    "users_by_element",
]
