"""A throwaway OpenLDAP slapd for tests: temp config, trustme certificates, seeded entries."""

from __future__ import annotations

import base64
import os
import re
import shutil
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Iterable, Iterator
from pathlib import Path

import ldap3
import trustme

from tests.servers import ServerProcess

SCHEMA_DIR = Path("/etc/ldap/schema")
AD_SCHEMA = Path(__file__).parent / "ldap" / "ad.schema"
SUFFIX = "dc=example,dc=test"
ROOT_DN = f"cn=admin,{SUFFIX}"
ROOT_PASSWORD = "root-Secret-9f3"
READER_DN = f"cn=reader,ou=service,{SUFFIX}"
READER_PASSWORD = "reader-Secret-7c1e"
PEOPLE_DN = f"ou=people,{SUFFIX}"
USERS_DN = f"ou=users,{SUFFIX}"
IMPORT_CA = "ldap-ca.pem"  # the CA's name in an appliance's import directory (Slapd.ca_into)
# ManageDsaIT: admin changes act on referral objects themselves instead of being referred.
MANAGE_DSA_IT = [("2.16.840.1.113730.3.4.2", True, None)]

# RFC 2849 SAFE-STRING: ASCII without NUL, LF, CR; not starting with space, ":" or "<".
_SAFE_LDIF = re.compile(r"^[\x01-\x09\x0b\x0c\x0e-\x1f\x21-\x39\x3b\x3d-\x7f]"
                        r"[\x01-\x09\x0b\x0c\x0e-\x7f]*$")


def _stopped(task: Path) -> bool:
    try:
        stat = (task / "stat").read_text()
    except FileNotFoundError:  # the thread has ended
        return True
    return stat.rsplit(")", 1)[1].split()[0] in ("T", "t")


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def ldif_record(dn: str, attrs: dict) -> str:
    """One LDIF entry; values may be str, bytes, int or lists of them."""
    lines = [_ldif_line("dn", dn)]
    for name, values in attrs.items():
        if not isinstance(values, (list, tuple)):
            values = [values]
        lines.extend(_ldif_line(name, value) for value in values)
    return "\n".join(lines) + "\n\n"


def _ldif_line(name: str, value) -> str:
    if isinstance(value, int):
        value = str(value)
    if isinstance(value, str) and (value == "" or (_SAFE_LDIF.match(value)
                                                   and not value.endswith(" "))):
        return f"{name}: {value}"
    raw = value if isinstance(value, bytes) else value.encode()
    return f"{name}:: {base64.b64encode(raw).decode()}"


def person(i: int) -> tuple[str, dict]:
    """The `uid=user<i>` inetOrgPerson under ou=people."""
    return f"uid=user{i},{PEOPLE_DN}", {
        "objectClass": ["inetOrgPerson"], "uid": f"user{i}", "cn": f"First{i} Last{i}",
        "givenName": f"First{i}", "sn": f"Last{i}", "mail": f"user{i}@example.test",
        "telephoneNumber": f"+1 555 {i:06d}", "mobile": f"+1 666 {i:06d}",
        "departmentNumber": f"D{i % 7}", "title": "Engineer"}


def ad_user(i: int, guid: bytes | None = None) -> tuple[str, dict]:
    """An AD-like `user` under ou=users with a random 16-byte objectGUID."""
    return f"cn=AD User{i},{USERS_DN}", {
        "objectClass": ["user"], "cn": f"AD User{i}", "sAMAccountName": f"aduser{i}",
        "userPrincipalName": f"aduser{i}@example.test", "objectGUID": guid or os.urandom(16),
        "givenName": f"Ad{i}", "sn": f"User{i}", "mail": f"aduser{i}@example.test",
        "telephoneNumber": f"+1 777 {i:06d}", "department": "Sales", "title": "Seller"}


class Slapd(ServerProcess):
    """slapd on free ports of 127.0.0.1 (ldap:// and ldaps://) with its own dir and CA.

    Entries added before `start()` are loaded with `slapadd`; afterwards through ldap3 as
    the rootdn. The reader account (`READER_DN` / `READER_PASSWORD`) can read everything,
    with `sizelimit` entries at most per search ("unlimited" by default).
    """

    ready = re.compile(r"slapd starting")
    timeout = 20.0
    suffix, root_dn, root_password = SUFFIX, ROOT_DN, ROOT_PASSWORD
    reader_dn, reader_password = READER_DN, READER_PASSWORD
    people_dn, users_dn = PEOPLE_DN, USERS_DN

    def __init__(self, tmp_dir, *, sizelimit: int | str = "unlimited",
                 hostnames: Iterable[str] = ("localhost", "127.0.0.1"),
                 ca: trustme.CA | None = None, people: int = 0, ad_users: int = 0,
                 syncprov: bool = False, rootdse: dict | None = None):
        super().__init__([])
        self.syncprov = syncprov  # the syncprov overlay: contextCSN, as replicas use it
        self.rootdse = rootdse  # extra rootDSE attributes (a domain controller's, say)
        self.dir = Path(tmp_dir)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.sizelimit = sizelimit
        self.hostnames = list(hostnames)
        self.ca = ca or trustme.CA()
        self.ca_file = self.dir / "ca.pem"
        self.conf = self.dir / "slapd.conf"
        self.ldap_port = self.ldaps_port = 0
        self._pending: list[str] = []
        self._seeded = False
        self._conn: ldap3.Connection | None = None
        self.guids: dict[str, bytes] = {}
        if people:
            self.add_people(people)
        if ad_users:
            self.add_ad_users(ad_users)

    # -- lifecycle --------------------------------------------------------------------
    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    @property
    def url(self) -> str:
        return f"ldap://127.0.0.1:{self.ldap_port}/"

    @property
    def ldaps_url(self) -> str:
        return f"ldaps://127.0.0.1:{self.ldaps_port}/"

    def start(self) -> Slapd:
        """Write the config, load the seed entries, start slapd; retry on a port clash."""
        if not self._seeded:
            self._write_files()
            self._slapadd(seed=True)
            self._seeded = True
        elif self._pending:  # entries added while stopped
            self._slapadd(seed=False)
        for attempt in range(3):
            if attempt or not self.ldap_port:  # a restart keeps its ports if it can
                self.ldap_port, self.ldaps_port = free_port(), free_port()
            self.args = ["slapd", "-f", str(self.conf), "-h", f"{self.url} {self.ldaps_url}",
                         "-d", "none"]  # "-d 0" prints nothing, so "slapd starting" never shows
            self.match, self.output, self._ready = None, [], threading.Event()
            try:
                super().start()
            except RuntimeError:
                if attempt == 2 or "Address already in use" not in "".join(self.output):
                    raise
                continue
            self._wait_listening()
            return self
        raise AssertionError("unreachable")

    def _wait_listening(self) -> None:
        """slapd says "starting" before its daemon thread calls listen(): wait for that."""
        deadline = time.monotonic() + self.timeout
        for port in (self.ldap_port, self.ldaps_port):
            while True:
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=1).close()
                    break
                except OSError:
                    if time.monotonic() > deadline or not self.running:
                        self.stop()
                        raise RuntimeError(f"slapd is not listening on port {port}:\n"
                                           + "".join(self.output)) from None
                    time.sleep(0.01)

    def pause(self) -> None:
        """SIGSTOP slapd and wait until every thread is stopped: connections are still
        accepted by the kernel, but nothing answers (for timeout tests)."""
        os.kill(self.pid, signal.SIGSTOP)
        deadline = time.monotonic() + 5
        tasks = Path(f"/proc/{self.pid}/task")
        while not all(_stopped(task) for task in tasks.iterdir()):
            if time.monotonic() > deadline:
                raise RuntimeError("slapd did not stop")
            time.sleep(0.005)

    def resume(self) -> None:
        """SIGCONT after `pause()`."""
        os.kill(self.pid, signal.SIGCONT)

    def _drain(self, proc, ready, output) -> None:
        try:
            super()._drain(proc, ready, output)
        finally:
            proc.stdout.close()

    def stop(self, timeout: float = 10) -> None:
        """Close the admin connection and stop slapd by PID."""
        if self._conn is not None:
            try:
                self._conn.unbind()
            except ldap3.core.exceptions.LDAPException:
                pass
            self._conn = None
        super().stop(timeout)

    def set_rootdse(self, **attrs) -> None:
        """Change the extra rootDSE attributes; slapd reads them when it starts, so a
        running slapd restarts (on the same ports)."""
        self.rootdse = {**(self.rootdse or {}), **attrs}
        (self.dir / "rootdse.ldif").write_text(ldif_record("", self.rootdse))
        if self.running:
            self.stop()
            self.start()

    def _write_files(self) -> None:
        self.ca.cert_pem.write_to_path(str(self.ca_file))
        if self.rootdse is not None:
            (self.dir / "rootdse.ldif").write_text(ldif_record("", self.rootdse))
        cert = self.ca.issue_cert(*self.hostnames)
        cert.private_key_pem.write_to_path(str(self.dir / "server.key"))
        (self.dir / "server.pem").write_bytes(b"".join(p.bytes() for p in cert.cert_chain_pems))
        data = self.dir / "data"
        data.mkdir(exist_ok=True)
        includes = [SCHEMA_DIR / f"{n}.schema" for n in ("core", "cosine", "nis", "inetorgperson")]
        includes.append(AD_SCHEMA)
        lines = [f"include {path}" for path in includes] + [
            f"pidfile {self.dir / 'slapd.pid'}",
            f"argsfile {self.dir / 'slapd.args'}",
            *([f"rootDSE {self.dir / 'rootdse.ldif'}"] if self.rootdse is not None else []),
            "modulepath /usr/lib/ldap",
            "moduleload back_mdb",
            f"TLSCACertificateFile {self.ca_file}",
            f"TLSCertificateFile {self.dir / 'server.pem'}",
            f"TLSCertificateKeyFile {self.dir / 'server.key'}",
            "database mdb",
            "maxsize 1073741824",
            f'suffix "{SUFFIX}"',
            f'rootdn "{ROOT_DN}"',
            f"rootpw {ROOT_PASSWORD}",
            f"directory {data}",
            f'limits dn.exact="{READER_DN}" size={self.sizelimit}',
            "access to attrs=userPassword",
            "    by anonymous auth",
            "    by * none",
            "access to *",
            f'    by dn.exact="{READER_DN}" read',
            "    by * none",
        ]
        if self.syncprov:
            at = lines.index("moduleload back_mdb") + 1
            lines[at:at] = ["moduleload syncprov"]
            lines += ["index entryCSN,entryUUID eq", "overlay syncprov"]
        self.conf.write_text("\n".join(lines) + "\n")

    def _slapadd(self, seed: bool) -> None:
        base = [] if not seed else [
            (SUFFIX, {"objectClass": ["dcObject", "organization"], "dc": "example",
                      "o": "Example"}),
            (PEOPLE_DN, {"objectClass": "organizationalUnit", "ou": "people"}),
            (USERS_DN, {"objectClass": "organizationalUnit", "ou": "users"}),
            (f"ou=service,{SUFFIX}", {"objectClass": "organizationalUnit", "ou": "service"}),
            (READER_DN, {"objectClass": ["organizationalRole", "simpleSecurityObject"],
                         "cn": "reader", "userPassword": READER_PASSWORD}),
        ]
        ldif = self.dir / "seed.ldif"
        ldif.write_text("".join(ldif_record(dn, attrs) for dn, attrs in base)
                        + "".join(self._pending))
        self._pending.clear()
        done = subprocess.run(["slapadd", "-q", "-f", str(self.conf), "-l", str(ldif)],
                              capture_output=True, text=True)
        if done.returncode:
            raise RuntimeError(f"slapadd failed ({done.returncode}):\n{done.stderr}")

    def backup(self) -> str:
        """The database as LDIF: slapcat while slapd is stopped (a cold backup, holding the
        contextCSN slapd writes when it stops); slapd runs again afterwards if it ran."""
        running = self.running
        self.stop()
        done = subprocess.run(["slapcat", "-f", str(self.conf)], capture_output=True,
                              text=True, check=True)
        if running:
            self.start()
        return done.stdout

    def restore(self, ldif: str) -> None:
        """Stop, replace the database with `ldif` (slapadd), start again on the same ports."""
        self.stop()
        data = self.dir / "data"
        shutil.rmtree(data)
        data.mkdir()
        (self.dir / "restore.ldif").write_text(ldif)
        subprocess.run(["slapadd", "-q", "-f", str(self.conf), "-l",
                        str(self.dir / "restore.ldif")], capture_output=True, check=True)
        self.start()

    # -- directory changes ------------------------------------------------------------
    @property
    def admin(self) -> ldap3.Connection:
        """An ldap3 connection bound as the rootdn (opened on first use)."""
        if not self.running:
            raise RuntimeError("slapd is not running")
        if self._conn is None or self._conn.closed:
            server = ldap3.Server("127.0.0.1", port=self.ldap_port, get_info=ldap3.NONE)
            self._conn = ldap3.Connection(server, ROOT_DN, ROOT_PASSWORD, auto_bind=True,
                                          raise_exceptions=True, auto_referrals=False)
        return self._conn

    def add(self, dn: str, attrs: dict) -> str:
        """Add an entry (loaded by slapadd if slapd has not started yet); return its DN."""
        if self.running:
            attrs = dict(attrs)
            self.admin.add(dn, attributes=attrs, controls=MANAGE_DSA_IT)
        else:
            self._pending.append(ldif_record(dn, attrs))
        return dn

    def modify(self, dn: str, changes: dict) -> None:
        """Change attributes: values are ldap3 change lists, or plain values to replace."""
        mods = {}
        for name, value in changes.items():
            if isinstance(value, list) and value and isinstance(value[0], tuple):
                mods[name] = value
            elif value is None or value == []:
                mods[name] = [(ldap3.MODIFY_REPLACE, [])]
            else:
                values = value if isinstance(value, list) else [value]
                mods[name] = [(ldap3.MODIFY_REPLACE, values)]
        self.admin.modify(dn, mods, controls=MANAGE_DSA_IT)

    def delete(self, dn: str) -> None:
        self.admin.delete(dn, controls=MANAGE_DSA_IT)

    def rename(self, dn: str, new_rdn: str, new_superior: str | None = None) -> str:
        """modify_dn; return the new DN."""
        self.admin.modify_dn(dn, new_rdn, new_superior=new_superior, controls=MANAGE_DSA_IT)
        parent = new_superior if new_superior is not None else dn.split(",", 1)[1]
        return f"{new_rdn},{parent}"

    def add_people(self, n: int, start: int = 0) -> list[str]:
        """Add `uid=user<i>` inetOrgPersons for i in [start, start+n); return their DNs."""
        return [self.add(*person(i)) for i in range(start, start + n)]

    def add_ad_users(self, n: int, start: int = 0) -> dict[str, bytes]:
        """Add AD-like `user` entries under ou=users; return {dn: objectGUID bytes}."""
        added = {}
        for i in range(start, start + n):
            dn, attrs = ad_user(i)
            self.add(dn, attrs)
            added[dn] = attrs["objectGUID"]
        self.guids.update(added)
        return added

    def ca_into(self, import_dir) -> str:
        """Copy the CA certificate into an appliance's import directory, as an administrator
        would; return its name there (what the CA certificates field takes)."""
        shutil.copy(self.ca_file, Path(import_dir) / IMPORT_CA)
        return IMPORT_CA

    def settings(self, security: str = "none", **overrides):
        """`LdapSettings` for the reader account on ou=people (inetOrgPerson entries)."""
        from appliance.ldapdir import LdapSettings

        values = {"servers": ["localhost"],
                  "port": self.ldaps_port if security == "ldaps" else self.ldap_port,
                  "security": security, "ca_file": str(self.ca_file), "bind_dn": READER_DN,
                  "password": READER_PASSWORD, "base_dn": PEOPLE_DN,
                  "filter": "(objectClass=inetOrgPerson)", "timeout": 5.0}
        values.update(overrides)
        return LdapSettings(**values)


def run_slapd(tmp_dir, **kw) -> Iterator[Slapd]:
    """Yield a running Slapd (see its arguments), stopped afterwards: `yield from` it."""
    with Slapd(tmp_dir, **kw) as server:
        yield server
