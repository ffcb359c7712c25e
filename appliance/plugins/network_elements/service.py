"""Network elements and users: the one place that validates and stores them.

Pages, the API, bulk import, IDS and the management-platform endpoint all go through these
functions, so a rule (a licence, a department in use, a platform's methods) holds everywhere.
Each concern has its module; this one names what callers use.
"""

from .elements import (
    delete_element,
    element_dict,
    element_for_token,
    element_impact,
    ids_running,
    new_platform_token,
    remove_ids,
    save_element,
    seeded,
    undelivered,
)
from .licences import Licences, in_use, licences, set_licences
from .rules import (
    ELEMENT,
    NAMED,
    NONE,
    SERVICES,
    TEMPLATE,
    USER,
    by_name,
    import_cells,
    services_of,
)
from .sites import delete_named, save_named, used_by
from .user_templates import delete_template, save_template, template_dict
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
    users_query,
)

__all__ = [
    "ELEMENT", "NAMED", "NONE", "SERVICES", "TEMPLATE", "USER", "USER_COLUMNS", "Licences",
    "SiteTables", "by_name", "delete_element", "delete_named", "delete_template", "delete_user",
    "element_dict", "element_for_token", "element_impact", "flow_actions", "ids_running",
    "import_cells", "in_use", "licences", "new_platform_token", "queue", "remove_ids",
    "resolve_user", "save_element", "save_named", "save_template", "save_user", "seeded",
    "services_of", "set_licences", "snapshot", "template_dict", "undelivered", "used_by",
    "user_dict", "user_form", "users_query",
]
