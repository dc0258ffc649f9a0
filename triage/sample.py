"""A realistic sample buyer mailbox, generated: for `triage demo`, the tests and the benchmarks.

`build(seed)` returns months of a buyer's already-filed mail (`history`) and a new week that has
just arrived in the inbox (`new_week`), each message with the folder it truly belongs in, its kind
and the facts the digest should find (amounts, dates, tickets, wrong names, merge fields).
`write_maildir` lays it out as a Maildir++ tree that `triage.mailbox.maildir` (and Dovecot) read.

The buyer is an IT/procurement leader. Trusted partners (hardware, SaaS, cloud, telecom, ...) each
have a folder `Vendors/<Partner>`; every other vendor (cold pitches, newsletters, webinars,
events) belongs in `Vendors/Generic`; colleagues' and personal mail stays in the INBOX (or in
`Archive`, where the buyer keeps some of it). The classes are meant to be learnable but not
trivial: partners and generic vendors share vocabulary (products, pricing, renewals, meetings,
webinars), partners send bulk newsletters too, pitches fake "Re:" threads, colleagues forward
vendor mail, and in the new week some partner mail comes from a person never seen before and
some generic vendors are brand new. No header names the folder.

Pure stdlib, no network, no files read, deterministic: the same arguments give byte-identical
messages (Message-IDs, MIME boundaries and times all come from the seeded generators). The MIME
is written by hand with the stdlib's encoders (`email.header`, `email.utils`, `binascii`)
rather than through `EmailMessage`, whose header objects cost about 1 ms a message; that alone
would eat the 2 s budget of the default mailbox. The tests parse every message back with
`email.policy.default`.
"""

from __future__ import annotations

import base64
import binascii
import math
import os
import random
import re
import textwrap
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta, timezone
from email.header import Header, decode_header, make_header
from email.utils import format_datetime, formataddr, parseaddr
from html import escape
from pathlib import Path
from types import MappingProxyType

__all__ = [
    "ARCHIVE",
    "DEFAULT_END",
    "GENERIC_FOLDER",
    "INBOX",
    "SENT",
    "VENDOR_PREFIX",
    "Buyer",
    "SampleMailbox",
    "SampleMessage",
    "build",
    "kinds",
    "write_maildir",
]

#: The default end of the new week: fixed so tests and demos are stable.
DEFAULT_END = datetime(2026, 11, 16, 9, 0, tzinfo=UTC)
VENDOR_PREFIX = "Vendors/"
GENERIC_FOLDER = "Vendors/Generic"
INBOX = "INBOX"
ARCHIVE = "Archive"
SENT = "Sent"


# -- public types ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SampleMessage:
    """One generated message, with where it belongs and what the digest should find in it."""

    folder: str  # "Vendors/<Partner>", "Vendors/Generic", "INBOX" or "Archive"
    data: bytes  # RFC 5322 bytes, CRLF line endings
    date: datetime  # tz-aware UTC, the same instant as the Date header
    kind: str  # "invoice", "shipment", "cold_pitch", "colleague", ...
    vendor: str  # vendor display name, "" for colleagues and personal mail
    # Ground truth: read-only; left out of the hash because a mapping is not hashable.
    facts: Mapping[str, object] = field(default_factory=dict, hash=False)


@dataclass(frozen=True, slots=True)
class Buyer:
    """The mailbox owner."""

    name: str
    first_name: str
    address: str
    domain: str
    company: str


@dataclass(frozen=True, slots=True)
class SampleMailbox:
    """A buyer, their partners, their filed history and a new week of mail."""

    buyer: Buyer
    partners: tuple[str, ...]  # partner vendor names; folders are "Vendors/<name>"
    history: tuple[SampleMessage, ...]  # already filed (and read), in date order
    new_week: tuple[SampleMessage, ...]  # just arrived in the INBOX; .folder = where it belongs
    # What the buyer sent (folder "Sent"): replies to partner mail, and mail to a generic vendor
    # they have started working with. Kept apart from `history`: it is nobody's training label.
    sent: tuple[SampleMessage, ...] = ()

    @property
    def folders(self) -> tuple[str, ...]:
        """Every folder the sample uses: INBOX, Archive, the generic bucket, one per partner,
        and Sent when the buyer sent anything."""
        sent = (SENT,) if self.sent else ()
        return (INBOX, ARCHIVE, GENERIC_FOLDER, *(VENDOR_PREFIX + p for p in self.partners), *sent)


# -- name pools -----------------------------------------------------------------------------------

_FIRST = (
    "Dana", "Marcus", "Priya", "Tomás", "Aisha", "Kenji", "Olivia", "Mateo", "Hannah", "Ravi",
    "Sofia", "Jonas", "Chloé", "Daniel", "Mei", "Samuel", "Fatima", "Lukas", "Grace", "Omar",
    "Elena", "Noah", "Ingrid", "Kwame", "Laura", "Ethan", "Zoë", "Diego", "Nadia", "Patrick",
    "Yuki", "Rebecca", "Andrei", "Isabel", "Tariq", "Megan", "Björn", "Leah", "Carlos", "Anika",
    "Victor", "Naomi", "Felix", "Rosa", "Hugo", "Maya", "Connor", "Amara", "Stefan", "Julia",
    "Ben", "Sara", "Ahmed", "Claire", "Raj", "Emily", "Pablo", "Nina", "Oscar", "Tessa",
    "Gavin", "Lena", "Malik", "Harriet", "Theo", "Carmen", "Erik", "Joanna", "Sean", "Aaliyah",
)  # fmt: skip
_LAST = (
    "Whitfield", "Okafor", "Lindqvist", "Moreau", "Castillo", "Nakamura", "Brennan", "Haddad",
    "Kowalski", "Patel", "Schneider", "O'Neill", "Novak", "Fischer", "Alvarez", "Chen", "Murphy",
    "Rossi", "Dubois", "Jensen", "Silva", "Kim", "Walsh", "Becker", "Nguyen", "Hughes", "Larsen",
    "Romero", "Sato", "Adeyemi", "Müller", "García", "Thompson", "Ivanova", "Bauer", "Reyes",
    "Foster", "Horvath", "Mendes", "Sullivan", "Park", "Andersson", "Costa", "Fleming", "Yilmaz",
    "Ward", "Kaur", "Lambert", "Price", "Vogel", "Quinn", "Delgado", "Osei", "Hartmann", "Ruiz",
)  # fmt: skip
# Names the wrong-name pitch uses: common, and never the buyer's own (checked when picked).
_WRONG_NAMES = ("Jenny", "Mike", "Sarah", "Brian", "Karen", "Steve", "Jessica", "Tom", "Linda")
_MERGE_FIELDS = ("{FirstName}", "{{first_name}}", "%FIRSTNAME%", "[First Name]")
_COMPANY_FIELDS = ("[Company]", "{Company}", "{{company_name}}")

_BUYER_COMPANIES = (
    ("Halvorsen Freight", "halvorsen-freight.example", "logistics"),
    ("Castellan Health", "castellanhealth.example", "healthcare"),
    ("Brookfield Components", "brookfield-components.example", "manufacturing"),
    ("Ardent Foods", "ardentfoods.example", "food distribution"),
    ("Lakeshore Insurance Group", "lakeshore-ins.example", "insurance"),
    ("Redwood Valley Credit Union", "redwoodvalleycu.example", "financial services"),
)
_BUYER_TITLES = (
    "Director of IT Procurement",
    "Head of IT Sourcing",
    "VP, IT & Procurement",
    "Senior Manager, Technology Procurement",
)
_COLLEAGUE_ROLES = (
    ("cfo", "Chief Financial Officer"),
    ("controller", "Finance Controller"),
    ("fpa", "FP&A Analyst"),
    ("itops", "IT Operations Manager"),
    ("analyst", "Procurement Analyst"),
    ("legal", "Senior Legal Counsel"),
    ("hr", "HR Business Partner"),
    ("office", "Office Manager"),
    ("security", "Information Security Lead"),
    ("cio", "Chief Information Officer"),
    ("assistant", "Executive Assistant"),
)
_PERSONAL_DOMAINS = ("mailbox.test", "postbox.test", "homemail.test", "fastpost.test")
# A shared invoicing platform: two partners bill through it and some generic vendors send
# receipts through it, so the sender's domain alone does not decide the folder.
_PLATFORM_NAME, _PLATFORM_ADDRESS = "PayHub", "notifications@payhub.test"
_CARRIERS = ("Parcelway", "NorthStar Express", "Blue Line Courier", "FastFreight Ground")
_US_CITIES = (
    ("Chicago", "IL", "312"), ("Austin", "TX", "512"), ("Denver", "CO", "303"),
    ("Atlanta", "GA", "404"), ("Seattle", "WA", "206"), ("Columbus", "OH", "614"),
    ("San Jose", "CA", "408"), ("Raleigh", "NC", "919"), ("Minneapolis", "MN", "612"),
    ("Phoenix", "AZ", "602"), ("Boston", "MA", "617"), ("Nashville", "TN", "615"),
)  # fmt: skip
_STREETS = ("Commerce Drive", "Market Street", "Lakeview Parkway", "Industrial Way", "Main Street")


# -- partner and generic vendor profiles ----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _PartnerKind:
    key: str
    names: tuple[str, ...]
    blurb: str  # what they provide, for prose
    products: tuple[tuple[str, float, float], ...]  # (item, unit price low, high)
    ships: bool  # orders lead to shipments and deliveries
    services: tuple[str, ...]  # what can have an outage or maintenance
    contract: str  # what gets renewed
    issues: tuple[str, ...]  # support ticket subjects
    discontinued: str  # what a termination notice ends
    eol: str  # what an end-of-life notice is about
    monthly: tuple[float, float]  # base monthly invoice
    currency: str = "USD"
    whole: bool = False  # invoices in whole units


_PARTNER_KINDS: tuple[_PartnerKind, ...] = (
    _PartnerKind(
        "hardware",
        ("Brightline Technology", "Corvid Computer Supply", "Summit Systems Direct"),
        "laptops, monitors and peripherals",
        (
            ("14-inch business laptop", 1090, 1590),
            ("27-inch USB-C monitor", 260, 420),
            ("Thunderbolt docking station", 170, 260),
            ("noise-cancelling headset", 90, 190),
            ("wireless keyboard and mouse kit", 40, 85),
            ("rugged field tablet", 880, 1350),
        ),
        True,
        ("the order portal", "the RMA portal", "the device enrollment service"),
        "Advanced Hardware Support (next business day)",
        (
            "three laptops arrived with cracked screens",
            "docking stations dropping external monitors after the firmware update",
            "BIOS password reset for 12 returned laptops",
            "warranty claim for a failed SSD",
        ),
        "the Device Trade-In and Recycling program",
        "the ProLine X14 Gen 2 laptop",
        (18000, 42000),
    ),
    _PartnerKind(
        "saas",
        ("Lumen Workspace", "Pinnacle Collaboration", "Tandem Cloud Suite"),
        "collaboration and productivity licenses",
        (
            ("Enterprise user license (annual)", 180, 260),
            ("Advanced compliance add-on", 40, 70),
            ("Meeting room system license", 450, 700),
        ),
        False,
        ("video meetings", "file sync", "single sign-on", "the calendar service"),
        "Enterprise subscription (850 seats)",
        (
            "SSO login failures for users in the EMEA tenant",
            "calendar invites arriving hours late",
            "audit log export timing out",
            "license count in the admin console does not match our true-up",
        ),
        "the legacy on-premises directory connector",
        "Classic Meetings desktop client 5.x",
        (9000, 22000),
    ),
    _PartnerKind(
        "cloud",
        ("Cobalt Cloud", "Stratus Ridge Cloud", "Nimbus Peak Hosting"),
        "cloud infrastructure",
        (
            ("reserved compute instance (1 year)", 900, 1500),
            ("business support plan upgrade", 1500, 3000),
            ("dedicated host (monthly)", 4000, 6500),
        ),
        False,
        (
            "object storage in us-east-2",
            "managed Kubernetes",
            "the customer console",
            "managed databases",
        ),
        "committed spend agreement",
        (
            "quota increase request for GPU instances",
            "billing export is missing cost-allocation tags",
            "intermittent packet loss between availability zones",
            "snapshot restore failing for a production volume",
        ),
        "the Classic Networking (EC-1) platform",
        "the gen-3 general purpose instance family",
        (28000, 72000),
    ),
    _PartnerKind(
        "telecom",
        ("Meridian Networks", "Bluewater Telecom", "Crossline Communications"),
        "network and voice services",
        (
            ("100 Mbps dedicated internet circuit", 650, 1100),
            ("SD-WAN edge appliance", 1800, 2900),
            ("mobile line (unlimited)", 35, 60),
        ),
        True,
        ("the MPLS network in the Midwest region", "SIP trunking", "the Dallas warehouse circuit"),
        "SD-WAN managed service agreement",
        (
            "high latency on the Denver circuit",
            "porting 14 numbers to the new SIP trunk",
            "jitter on voice calls from the Atlanta office",
            "billing dispute on a decommissioned circuit",
        ),
        "3G mobile data service",
        "the EA-200 edge router",
        (11000, 24000),
        whole=True,
    ),
    _PartnerKind(
        "security",
        ("Bastion Shield Security", "Ironclad Defense Group", "Watchpost Cyber"),
        "managed security services",
        (
            ("endpoint protection license", 38, 62),
            ("phishing simulation module", 2500, 4200),
            ("incident response retainer (hours)", 240, 320),
        ),
        False,
        ("the SOC customer portal", "endpoint agent updates", "the SIEM log pipeline"),
        "24/7 Managed Detection and Response service",
        (
            "false positives from the EDR agent on finance workstations",
            "log source onboarding for the new firewall",
            "vulnerability scan report missing two subnets",
            "uninstall tokens for decommissioned laptops",
        ),
        "the on-premises log collector appliance",
        "the LC-2 log collector",
        (14000, 32000),
    ),
    _PartnerKind(
        "staffing",
        ("Keystone Talent Partners", "Northgate Consulting", "Bridgewell Technical Staffing"),
        "IT contractors and project staff",
        (
            ("senior network engineer (hourly)", 95, 140),
            ("project manager (hourly)", 85, 120),
            ("service desk analyst (hourly)", 45, 65),
        ),
        False,
        ("the timesheet portal", "the contractor onboarding portal"),
        "master services agreement and statement of work",
        (
            "timesheet approvals stuck for two contractors",
            "background check status for the new service desk analyst",
            "badge access for contractors starting Monday",
            "incorrect bill rate on last month's invoice",
        ),
        "our on-site service desk staffing practice",
        "the legacy timesheet app",
        (38000, 82000),
        whole=True,
    ),
    _PartnerKind(
        "office",
        ("Atlas Workplace Supply", "Meadowbrook Office Solutions", "Cornerstone Office Supply"),
        "office supplies and furniture",
        (
            ("ergonomic task chair", 280, 520),
            ("sit-stand desk frame", 390, 680),
            ("case of copy paper (10 reams)", 42, 58),
            ("black toner cartridge", 85, 140),
            ("dual monitor arm", 95, 160),
        ),
        True,
        ("the online ordering site", "order tracking"),
        "contract pricing agreement",
        (
            "missing items from the last delivery",
            "damaged desk frames in the last delivery",
            "wrong toner model delivered",
            "credit for returned chairs not applied",
        ),
        "next-day delivery to suburban locations",
        "the Contour task chair",
        (2800, 7500),
    ),
    _PartnerKind(
        "print",
        ("Clearview Print Services", "Inkwell Managed Print", "Printwise Solutions"),
        "managed print services",
        (
            ("A3 multifunction printer lease (monthly)", 120, 190),
            ("toner replenishment (per device)", 18, 30),
            ("secure release license", 12, 20),
        ),
        True,
        ("print fleet monitoring", "secure print release", "supplies auto-replenishment"),
        "managed print services agreement",
        (
            "3rd floor MFP jamming on duplex jobs",
            "scan-to-email failing after the mail server change",
            "toner not auto-shipping for the Reno office",
            "meter readings missing for two devices",
        ),
        "the managed print program for small-format devices",
        "the MX-3070 multifunction printer",
        (3500, 9000),
    ),
    _PartnerKind(
        "erp",
        ("Kessler Datentechnik GmbH", "Brandt Softwarehaus AG", "Vogel Systemhaus GmbH"),
        "the ERP system and its maintenance",
        (
            ("ERP named user license", 900, 1400),
            ("warehouse management module", 9000, 15000),
            ("consulting day (on site)", 1100, 1500),
        ),
        False,
        ("the ERP cloud tenant (EU region)", "the EDI gateway", "the reporting server"),
        "software maintenance contract",
        (
            "EDI orders from two suppliers not importing",
            "period-end close job failing",
            "VAT report rounding differences",
            "slow posting of goods receipts",
        ),
        "support for ERP release 8.x",
        "ERP release 8.4",
        (12000, 28000),
        currency="EUR",
    ),
    _PartnerKind(
        "backup",
        ("Vaultline Data", "Keepsafe Storage Systems", "Archway Backup"),
        "backup appliances and cloud retention",
        (
            ("backup appliance (60 TB)", 18000, 26000),
            ("cloud retention capacity (10 TB)", 900, 1400),
            ("immutable storage add-on", 2500, 3800),
        ),
        True,
        ("cloud vault replication", "the management console", "offsite replication"),
        "appliance maintenance and cloud retention agreement",
        (
            "nightly backup job failing for the file server",
            "replication lag to the secondary site",
            "restore test for the ERP database",
            "disk failure alert on the primary appliance",
        ),
        "the tape export service",
        "the VL-4000 backup appliance",
        (6000, 14000),
    ),
    _PartnerKind(
        "logistics",
        ("Tidewater Freight Logistics", "Crossdock Logistics", "Ridgeway Freight"),
        "warehousing and freight",
        (
            ("pallet storage (per month)", 18, 30),
            ("LTL freight, regional", 350, 900),
            ("white-glove IT asset delivery", 140, 260),
        ),
        True,
        ("the shipment tracking portal", "EDI status messages"),
        "warehousing and distribution agreement",
        (
            "pallet of monitors delayed at the Memphis hub",
            "proof of delivery missing for a shipment",
            "damaged carton claim",
            "address correction fees on the last invoice",
        ),
        "Saturday delivery service",
        "the legacy shipment tracking app",
        (9000, 21000),
    ),
    _PartnerKind(
        "datacenter",
        ("Granite Colocation Ltd", "Thameside Data Centres Ltd", "Ashdown Hosting Ltd"),
        "colocation space and power",
        (
            ("42U cabinet (monthly)", 950, 1400),
            ("cross connect", 150, 300),
            ("remote hands (per hour)", 90, 140),
        ),
        False,
        (
            "power feed B in hall 2",
            "remote hands ticketing",
            "cross-connects in the Slough facility",
        ),
        "colocation services agreement",
        (
            "remote hands request: reseat line card in cabinet R12",
            "access list update for new engineers",
            "temperature alert in cabinet R14",
            "cross connect install date",
        ),
        "the legacy Hall 1 shared cage",
        "the Hall 1 shared cage",
        (16000, 30000),
        currency="GBP",
    ),
)


@dataclass(frozen=True, slots=True)
class _GenericKind:
    key: str
    names: tuple[str, ...]
    offer: str  # what they sell, as a noun phrase
    pains: tuple[str, ...]  # hooks
    values: tuple[str, ...]  # value propositions
    titles: tuple[str, ...]  # article / webinar titles


_GENERIC_KINDS: tuple[_GenericKind, ...] = (
    _GenericKind(
        "procurement",
        ("Procura AI", "Spendwise", "Tendrel"),
        "spend analytics platform",
        ("tail spend nobody owns", "vendor renewals that sneak up on you", "maverick spend"),
        (
            "we classify every invoice line and flag duplicate vendors automatically",
            "our customers find 6-9% savings in the first quarter",
            "we plug into your ERP in a week, no IT project",
        ),
        ("5 signs your vendor base is too big", "Benchmark: IT spend per employee in 2027"),
    ),
    _GenericKind(
        "security",
        ("Cipherline", "Aegis Vector", "Zero Gate Security"),
        "zero-trust access platform",
        ("VPN sprawl", "cyber-insurance questionnaires", "risky third-party access"),
        (
            "we replace legacy VPNs in under 30 days",
            "our platform passed every control in the last cyber-insurance renewal of our clients",
            "it is one agent and one policy engine, with no hardware",
        ),
        ("Ransomware readiness in 30 minutes", "What auditors ask about third-party access"),
    ),
    _GenericKind(
        "staffing",
        ("TalentBridge Staffing", "Apex Recruiting Partners", "Hireloop"),
        "IT staffing service",
        ("hard-to-fill network roles", "rising contractor rates", "slow time-to-hire"),
        (
            "we place pre-vetted engineers in 10 business days",
            "our bill rates are 12% under the market average",
            "we replace any placement in the first 90 days at no cost",
        ),
        ("2027 IT salary guide", "Contract vs. permanent: the real cost"),
    ),
    _GenericKind(
        "cloudcost",
        ("CloudTrim", "CostLens", "FinOptic"),
        "cloud cost optimization tool",
        (
            "cloud bills growing faster than usage",
            "idle reserved instances",
            "untagged cloud spend",
        ),
        (
            "we typically cut cloud spend 20-35% without touching code",
            "we only charge a share of what we save you",
            "we only need read-only access, and you see results in 48 hours",
        ),
        ("The FinOps maturity checklist", "How a retailer cut its cloud bill by 31%"),
    ),
    _GenericKind(
        "furniture",
        ("Oakline Furniture", "Ergonest", "Workform Interiors"),
        "office furniture",
        ("return-to-office planning", "cramped hot-desking layouts", "worn-out task chairs"),
        (
            "we design, deliver and install a full floor in six weeks",
            "our chairs carry a 12-year warranty",
            "free space planning with every order over 50 seats",
        ),
        ("Designing the hybrid office", "Ergonomics on a budget"),
    ),
    _GenericKind(
        "analytics",
        ("Quanta Insights", "Datapeak Analytics", "Lumina BI"),
        "analytics platform",
        ("reports that take a week to build", "spreadsheets emailed around", "data silos"),
        (
            "you get self-service dashboards on top of your existing ERP",
            "we connect to 200+ sources out of the box",
            "pricing is fixed, with unlimited viewers",
        ),
        ("From spreadsheets to dashboards in 30 days", "The CFO's guide to self-service BI"),
    ),
    _GenericKind(
        "hr",
        ("PeopleFlow HR", "Onboardly", "Crewstack"),
        "HR and onboarding software",
        ("new hires waiting days for a laptop", "manual onboarding checklists", "offboarding gaps"),
        (
            "we automate IT provisioning from the HR system",
            "new hires are productive on day one",
            "every offboarding closes every account",
        ),
        ("Onboarding that IT actually likes", "Offboarding: the security gap nobody owns"),
    ),
    _GenericKind(
        "ap",
        ("Ledgerly", "PayStream AP", "Invoicely Pro"),
        "accounts payable automation",
        ("invoices stuck in approval", "duplicate vendor payments", "late-payment fees"),
        (
            "we capture invoices from email and match them to POs automatically",
            "our customers approve invoices in under two days",
            "we catch duplicate payments before they go out",
        ),
        ("Touchless invoice processing", "Why invoice exceptions happen"),
    ),
    _GenericKind(
        "contracts",
        ("ClauseIQ", "Inkpact Contracts", "Covenant CLM"),
        "contract lifecycle management",
        (
            "auto-renewals nobody noticed",
            "contracts scattered across inboxes",
            "missed notice periods",
        ),
        (
            "we read your contracts and alert you 90 days before every renewal",
            "you get one repository for every vendor agreement",
            "e-signature is built in",
        ),
        ("Never miss a notice period again", "Contract data your CFO will love"),
    ),
    _GenericKind(
        "voip",
        ("Voxa Voice", "Callbridge UC", "Ringwell"),
        "cloud phone system",
        ("aging PBX hardware", "expensive SIP trunks", "call quality complaints"),
        (
            "we port your numbers in a weekend",
            "you get unlimited calling for a flat per-user price",
            "it works with the collaboration suite you already have",
        ),
        ("Retiring your PBX without drama", "Call quality: what really matters"),
    ),
    _GenericKind(
        "mdm",
        ("Fleetlock MDM", "DeviceHaven", "Kandor Endpoint"),
        "device management platform",
        ("laptops that never get patched", "lost devices", "shadow IT on phones"),
        (
            "every laptop and phone enrolls zero-touch",
            "auditors get patch compliance dashboards",
            "you can lock and wipe a lost device in one click",
        ),
        ("Zero-touch deployment explained", "Patch compliance in a hybrid world"),
    ),
    _GenericKind(
        "swag",
        ("Swagcraft", "Brandbox Merch", "Kitly"),
        "branded merchandise",
        (
            "new-hire welcome kits that arrive late",
            "last-minute event swag",
            "client gifting logistics",
        ),
        (
            "we ship eco-friendly kits anywhere in 5 days",
            "there is no minimum order on our top 50 items",
            "we store your inventory for free",
        ),
        ("Holiday gifting guide", "Welcome kits that people keep"),
    ),
    _GenericKind(
        "training",
        ("Phishproof Academy", "Skillrise Learning", "Upwise Training"),
        "security awareness training",
        (
            "employees clicking phishing links",
            "compliance training nobody finishes",
            "audit findings",
        ),
        (
            "our 5-minute monthly lessons get 94% completion",
            "our phishing simulations are based on real attacks",
            "reports map straight to ISO 27001 and SOC 2",
        ),
        ("Phishing trends this quarter", "Making training stick"),
    ),
    _GenericKind(
        "itad",
        ("GreenCycle ITAD", "Reboot Recyclers", "Second Life IT"),
        "IT asset disposal service",
        (
            "storage closets full of old laptops",
            "missing data-wipe certificates",
            "e-waste compliance",
        ),
        (
            "you get a data-destruction certificate for every serial number",
            "we buy back devices under five years old",
            "pickup is free for 25 devices or more",
        ),
        ("The true value of your old laptops", "E-waste rules by state"),
    ),
    _GenericKind(
        "research",
        ("Gartwell Research", "Insightpoint Advisory", "Meridian Analyst Group"),
        "research and advisory membership",
        ("renewal negotiations without benchmarks", "long vendor shortlists"),
        (
            "our analysts review your contract terms against 4,000 deals",
            "members get unlimited analyst inquiry calls",
            "you get price benchmarks for every major software vendor",
        ),
        ("Software pricing outlook 2027", "Negotiating renewals in a seller's market"),
    ),
    _GenericKind(
        "consulting",
        ("Bluestone Advisory", "Kinetic IT Consulting", "Parallax Partners"),
        "IT sourcing consulting",
        ("outsourcing contracts up for renewal", "cost reduction targets", "vendor consolidation"),
        (
            "we renegotiated $40M of IT contracts last year",
            "our fees are tied to the savings we deliver",
            "we start with a fixed-price, two-week spend diagnostic",
        ),
        ("Vendor consolidation playbook", "Sourcing strategy in an uncertain market"),
    ),
    _GenericKind(
        "energy",
        ("Voltwise Energy", "Gridline Power Partners"),
        "energy procurement service",
        ("rising electricity rates", "data center power costs", "sustainability reporting"),
        (
            "we lock in rates across all your sites",
            "renewable energy certificates are included",
            "there is no fee unless we beat your current rate",
        ),
        ("Energy market update", "Scope 2 reporting made simple"),
    ),
    _GenericKind(
        "coworking",
        ("Hive Workspaces", "Nomad Offices", "Commons Flex"),
        "flexible office space",
        ("half-empty offices", "expensive long leases", "teams in new cities"),
        (
            "memberships flex from one desk to a full floor",
            "spaces are move-in ready, with IT and printing included",
            "we have locations in 40 cities",
        ),
        ("The flexible office report", "Hybrid work: the numbers"),
    ),
)

_WEBINAR_DAYS = (1, 2, 3)  # Tue-Thu, when vendors like to run webinars
_EVENTS = (
    ("CIO Leadership Summit", "Chicago"),
    ("Procurement Innovation Forum", "Austin"),
    ("CloudCon Midwest", "Columbus"),
    ("IT Sourcing Roundtable", "Boston"),
    ("SecureOps Conference", "Las Vegas"),
    ("Future of Work Expo", "Denver"),
)


# -- small helpers --------------------------------------------------------------------------------

# Stands in for a space that must not be broken by line wrapping (inside amounts and dates), so
# "USD 12,450" is never split over two lines; replaced by a plain space when the mail is written.
_NB = "\x00"
_MONTHS = (
    "January", "February", "March", "April", "May", "June", "July", "August", "September",
    "October", "November", "December",
)  # fmt: skip
_WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


def _ascii(text: str) -> str:
    """Letters for an address local part: accents dropped, ß/ø spelled out, punctuation removed."""
    text = text.replace("ß", "ss").replace("ø", "o").replace("Ø", "O")
    folded = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]", "", folded.lower())


def _money(amount: float, style: str) -> str:
    """An amount the way a vendor writes it; `style` is fixed per vendor with some variation."""
    us = f"{amount:,.2f}"
    eu = us.replace(",", " ").replace(".", ",").replace(" ", ".")
    if style == "usd_sym":
        return f"${us}"
    if style == "usd_code":
        return f"USD{_NB}{us}"
    if style == "usd_whole":
        return f"USD{_NB}{amount:,.0f}" if amount == int(amount) else f"USD{_NB}{us}"
    if style == "usd_suffix":
        return f"{us}{_NB}USD"
    if style == "usd_us":
        return f"US${us}"
    if style == "eur_code":
        return f"EUR{_NB}{eu}"
    if style == "eur_suffix":
        return f"{eu}{_NB}€"
    if style == "eur_sym":
        return f"€{_NB}{eu}"
    if style == "gbp_code":
        return f"GBP{_NB}{us}"
    return f"£{us}"


_MONEY_STYLES = {
    "USD": ("usd_sym", "usd_code", "usd_suffix", "usd_us"),
    "EUR": ("eur_code", "eur_suffix", "eur_sym"),
    "GBP": ("gbp_sym", "gbp_code"),
}


def _fmt_date(d: date, style: str) -> str:
    """A date in one of the formats vendors use; `style` is fixed per vendor with some variation."""
    month = _MONTHS[d.month - 1]
    if style == "long_us":
        return f"{month}{_NB}{d.day},{_NB}{d.year}"
    if style == "short_us":
        return f"{month[:3]}{_NB}{d.day},{_NB}{d.year}"
    if style == "us_num":
        return f"{d.month:02d}/{d.day:02d}/{d.year}"
    if style == "eu_num":
        return f"{d.day:02d}/{d.month:02d}/{d.year}"
    if style == "de":
        return f"{d.day:02d}.{d.month:02d}.{d.year}"
    if style == "long_eu":
        return f"{d.day}{_NB}{month}{_NB}{d.year}"
    if style == "weekday":
        return f"{_WEEKDAYS[d.weekday()]},{_NB}{month}{_NB}{d.day},{_NB}{d.year}"
    return d.isoformat()


def _fold_ascii(name: str, value: str) -> str:
    """Folds an ASCII header value at spaces so lines stay under 78 characters."""
    line = f"{name}: "
    out: list[str] = []
    for word in value.split(" "):
        if len(line) + len(word) + 1 > 76 and line.strip() and not line.endswith(": "):
            out.append(line.rstrip(" "))
            line = " "
        line += word + " "
    out.append(line.rstrip(" "))
    return "\n".join(out)


def _header(name: str, value: str) -> str:
    if value.isascii():
        return _fold_ascii(name, value)
    encoded = Header(value, "utf-8", header_name=name).encode(linesep="\n")
    return f"{name}: {encoded}"


def _addr(name: str, address: str) -> str:
    return formataddr((name, address), charset="utf-8") if name else address


def _addr_header(name: str, addresses: Sequence[tuple[str, str]]) -> str:
    parts = [_addr(n, a) for n, a in addresses]
    line = f"{name}: "
    out: list[str] = []
    for i, part in enumerate(parts):
        piece = part + ("," if i < len(parts) - 1 else "")
        if len(line) + len(piece) > 76 and line.strip() and not line.endswith(": "):
            out.append(line.rstrip(" "))
            line = " "
        line += piece + " "
    out.append(line.rstrip(" "))
    return "\n".join(out)


def _encode_body(text: str, cte: str) -> tuple[str, str, bytes]:
    """(charset, transfer encoding, encoded body) for a text part."""
    if text.isascii() and cte != "base64" and max(map(len, text.split("\n"))) < 900:
        return "us-ascii", "7bit", text.encode("ascii")
    raw = text.encode("utf-8")
    if cte == "base64":
        return "utf-8", "base64", base64.encodebytes(raw)
    return "utf-8", "quoted-printable", binascii.b2a_qp(raw, istext=True)


def _html_paragraphs(text: str) -> str:
    blocks = []
    for block in text.split("\n\n"):
        lines = [_link(escape(line)) for line in block.split("\n")]
        blocks.append("<p>" + "<br>\n".join(lines) + "</p>")
    return "\n".join(blocks)


def _link(line: str) -> str:
    return re.sub(r"(https://[^\s<]+)", r'<a href="\1">\1</a>', line)


def _poisson(rng: random.Random, lam: float) -> int:
    """Knuth's method; the rates here are small, so it is fast and exact."""
    limit, k, p = math.exp(-lam), 0, 1.0
    while True:
        p *= rng.random()
        if p <= limit:
            return k
        k += 1


# -- internal model of the people and organisations -----------------------------------------------


@dataclass(slots=True)
class _Person:
    name: str
    first: str
    address: str
    role: str
    title: str
    phone: str


@dataclass(slots=True)
class _Org:
    name: str
    domain: str
    partner: bool
    people: list[_Person]
    systems: dict[str, tuple[str, str]]  # function -> (display name, address)
    money_style: str
    date_style: str
    tz: timezone
    wrap: bool  # this org's mail client wraps plain text at 72 columns
    sig_style: int
    disclaimer: str
    city: str
    street: str
    platform: str  # how their Message-IDs look
    pkind: _PartnerKind | None = None
    gkind: _GenericKind | None = None
    newcomers: list[_Person] = field(default_factory=list)  # first write in the new week
    bulk_host: str = ""
    color: str = "#1a73e8"
    new_this_week: bool = False  # generic vendors first seen in the new week
    cadence: int = 0  # newsletter every N weeks (0: none)
    phase: int = 0  # ...starting in week `phase`, so lists do not all land in the same weeks
    invoice_day: int = 0  # day of month (0: no mailed invoices)
    base_amount: float = 0.0
    account_no: str = ""
    billing_reply: str = ""  # Reply-To of invoices sent through the shared platform


@dataclass(slots=True)
class _Draft:
    when: datetime
    kind: str
    vendor: str
    folder: str  # "" for colleague/personal mail: INBOX or Archive depending on when
    facts: dict[str, object]
    data: bytes
    thread: str
    archive: bool = False


@dataclass(slots=True)
class _Part:
    """A MIME part: headers (already folded) and a body (text, encoded at write time)."""

    content_type: str
    text: str = ""
    cte: str = "auto"
    filename: str = ""
    payload: bytes = b""
    children: list[_Part] = field(default_factory=list)


def _text_part(text: str, subtype: str = "plain", cte: str = "auto") -> _Part:
    return _Part(f"text/{subtype}", text, cte)


# -- the generator --------------------------------------------------------------------------------


class _Generator:
    def __init__(
        self, seed: int, weeks: int, end: datetime, n_partners: int, n_generic: int
    ) -> None:
        self.seed = seed
        self.rng = random.Random(f"triage-sample:{seed}")
        self.end = end
        self.split = end - timedelta(days=7)
        self.start = self.split - timedelta(days=7 * weeks)
        self.weeks = weeks
        self.drafts: list[_Draft] = []
        self.ids: set[str] = set()
        self.used_names: set[str] = set()
        self.addresses: set[str] = set()
        self.domains: set[str] = set()
        self.used_orgs: dict[str, int] = {}  # planted events per partner, to spread them out
        self.wrote: set[str] = set()  # addresses that sent something before the new week
        self._make_buyer()
        self._make_colleagues()
        self.partners = self._make_partners(n_partners)
        self.generics = self._make_generics(n_generic)

    # -- people ------------------------------------------------------------------------------

    def _new_name(self) -> tuple[str, str, str]:
        rng = self.rng
        taken = self.buyer.first_name if hasattr(self, "buyer") else ""
        for _ in range(200):
            first, last = rng.choice(_FIRST), rng.choice(_LAST)
            # Nobody else shares the buyer's first name, so a greeting is clearly right or wrong.
            if f"{first} {last}" not in self.used_names and first != taken:
                break
        self.used_names.add(f"{first} {last}")
        return f"{first} {last}", first, last

    def _local(self, first: str, last: str, style: int) -> str:
        f, last_ = _ascii(first), _ascii(last)
        return (f"{f}.{last_}", f"{f[0]}{last_}", f, f"{f}_{last_}", f"{f}{last_[0]}")[style]

    def _phone(self, org_kind: str, area: str) -> str:
        rng = self.rng
        if org_kind == "EUR":
            return f"+49 711 555 {rng.randint(1000, 9999)}"
        if org_kind == "GBP":
            return f"+44 20 7946 0{rng.randint(100, 999)}"
        return f"+1 ({area}) 555-01{rng.randint(0, 99):02d}"

    def _make_buyer(self) -> None:
        rng = self.rng
        company, domain, industry = rng.choice(_BUYER_COMPANIES)
        name, first, last = self._new_name()
        self.buyer = Buyer(name, first, f"{self._local(first, last, 0)}@{domain}", domain, company)
        self.buyer_title = rng.choice(_BUYER_TITLES)
        self.industry = industry
        self.buyer_city = rng.choice(_US_CITIES)
        self.buyer_tz = timezone(timedelta(hours=rng.choice((-5, -6))))
        self.ap_address = ("Accounts Payable", f"ap@{domain}")

    def _make_colleagues(self) -> None:
        domain = self.buyer.domain
        self.colleagues: dict[str, _Person] = {}
        for role, title in _COLLEAGUE_ROLES:
            name, first, last = self._new_name()
            self.colleagues[role] = _Person(
                name, first, f"{self._local(first, last, 0)}@{domain}", role, title, ""
            )
        self.friends: list[_Person] = []
        for role in ("friend", "friend", "family", "family", "friend", "coach"):
            name, first, last = self._new_name()
            local = self._local(first, last, self.rng.randrange(5)) + str(self.rng.randint(1, 99))
            address = f"{local}@{self.rng.choice(_PERSONAL_DOMAINS)}"
            self.friends.append(_Person(name, first, address, role, "", ""))

    def _org_domain(self, name: str) -> str:
        words = [_ascii(w) for w in name.split() if w not in ("GmbH", "AG", "Ltd")]
        words = [w for w in words if w]
        style = self.rng.randrange(5)
        if style == 0 or len(words) == 1:
            base = "".join(words)
        elif style == 1:
            base = "-".join(words)
        elif style == 2:
            # Startups buy the domain they can get: getacme, acmehq, tryacme.
            base = self.rng.choice(("get{}", "{}hq", "try{}", "{}app")).format(words[0])
        else:
            base = words[0]
        return f"{base}.example"

    def _base_org(self, name: str, partner: bool, currency: str) -> _Org:
        rng = self.rng
        domain = self._org_domain(name)
        # Two vendors must never share a domain (that would leak one's label into the other).
        while domain in self.domains:
            domain = domain.replace(".example", f"{rng.randint(2, 9)}.example")
        self.domains.add(domain)
        if currency == "EUR":
            tz, date_style, city, street = timezone(timedelta(hours=1)), "de", "Stuttgart", ""
            money = rng.choice(_MONEY_STYLES["EUR"])
        elif currency == "GBP":
            tz, date_style, city, street = timezone(timedelta(0)), "long_eu", "London", ""
            money = rng.choice(_MONEY_STYLES["GBP"])
        else:
            tz = timezone(timedelta(hours=rng.choice((-5, -6, -7, -8))))
            date_style = rng.choice(("long_us", "short_us", "us_num", "iso", "weekday"))
            city_, state, _area = rng.choice(_US_CITIES)
            city, street = f"{city_}, {state}", rng.choice(_STREETS)
            money = rng.choice(_MONEY_STYLES["USD"])
        disclaimer = ""
        if rng.random() < 0.35:
            disclaimer = rng.choice(
                (
                    "CONFIDENTIALITY NOTICE: This e-mail and any attachments are intended only "
                    "for the named recipient and may contain confidential information. If you "
                    "received it in error, please notify the sender and delete it.",
                    "This message may contain privileged or confidential information. Any "
                    "unauthorized review, use or distribution is prohibited.",
                    "Please consider the environment before printing this e-mail.",
                )
            )
        if currency == "EUR":
            disclaimer = (
                f"{name} · Sitz: Stuttgart · Amtsgericht Stuttgart HRB {rng.randint(10000, 99999)}"
                f" · Geschäftsführer: {self._new_name()[0]}"
            )
        return _Org(
            name=name,
            domain=domain,
            partner=partner,
            people=[],
            systems={},
            money_style=money,
            date_style=date_style,
            tz=tz,
            wrap=rng.random() < 0.3,
            sig_style=rng.randrange(4),
            disclaimer=disclaimer,
            city=city,
            street=street,
            platform=rng.choice(("outlook", "gmail", "own")),
            color=rng.choice(("#1a73e8", "#0b7a5a", "#c2410c", "#6d28d9", "#0f766e", "#b91c1c")),
        )

    def _person(self, org: _Org, role: str, title: str, style: int) -> _Person:
        name, first, last = self._new_name()
        area = self.rng.choice(_US_CITIES)[2]
        currency = org.pkind.currency if org.pkind else "USD"
        address = f"{self._local(first, last, style)}@{org.domain}"
        # Two people at one vendor can share a first name; the mail server then adds the initial.
        for alt in range(5):
            if address not in self.addresses:
                break
            address = f"{self._local(first, last, (style + alt + 1) % 5)}@{org.domain}"
        self.addresses.add(address)
        return _Person(name, first, address, role, title, self._phone(currency, area))

    def _make_partners(self, n: int) -> list[_Org]:
        rng = self.rng
        kinds = list(_PARTNER_KINDS)
        rng.shuffle(kinds)
        # One European (EUR) partner is part of every sample with three or more partners, so
        # European amount formats are always there for the digest's parser.
        erp = next(k for k in kinds if k.key == "erp")
        chosen = kinds[:n]
        if n >= 3 and erp not in chosen:
            chosen[-1] = erp
        orgs: list[_Org] = []
        for kind in chosen:
            org = self._base_org(rng.choice(kind.names), True, kind.currency)
            org.pkind = kind
            if kind.whole and kind.currency == "USD":
                org.money_style = rng.choice(("usd_whole", "usd_sym", "usd_code"))
            style = rng.randrange(5)
            titles = {
                "account_manager": (
                    "Account Manager", "Senior Account Executive", "Client Partner",
                    "Strategic Account Manager",
                ),
                "billing": (
                    "Billing Specialist", "Accounts Receivable Analyst", "Collections Coordinator",
                ),
                "support": (
                    "Technical Support Engineer", "Customer Success Engineer", "Service Desk Lead",
                ),
                "logistics": (
                    "Logistics Coordinator", "Order Management Specialist", "Fulfillment Lead",
                ),
            }  # fmt: skip
            roles = [
                (r, rng.choice(t)) for r, t in titles.items() if r != "logistics" or kind.ships
            ]
            # 2-4 named contacts: the account manager always, then a random subset of the rest.
            keep = rng.randint(1, len(roles) - 1)
            picked = [roles[0], *rng.sample(roles[1:], keep)]
            org.people = [self._person(org, r, t, style) for r, t in picked]
            org.newcomers = [
                self._person(
                    org,
                    rng.choice(("account_manager", "support")),
                    rng.choice(
                        ("Customer Success Manager", "Account Executive", "Renewals Manager")
                    ),
                    style,
                )
            ]
            short = org.name.replace(" GmbH", "").replace(" AG", "").replace(" Ltd", "")
            org.systems = {
                "billing": rng.choice(
                    (
                        (f"{short} Billing", f"billing@{org.domain}"),
                        ("Accounts Receivable", f"ar@{org.domain}"),
                        (f"{short} Invoicing", f"invoices@billing.{org.domain}"),
                    )
                ),
                "orders": rng.choice(
                    (
                        (f"{short} Orders", f"orders@{org.domain}"),
                        (short, f"noreply@{org.domain}"),
                        (f"{short} Customer Service", f"customerservice@{org.domain}"),
                    )
                ),
                "support": rng.choice(
                    (
                        (f"{short} Support", f"support@{org.domain}"),
                        (f"{short} Service Desk", f"servicedesk@{org.domain}"),
                        (f"{short} Help Center", f"help@{org.domain}"),
                    )
                ),
                "status": (f"{short} Status", f"noreply@status.{org.domain}"),
                "news": rng.choice(
                    (
                        (short, f"news@mail.{org.domain}"),
                        (f"{short} Insider", f"hello@{org.domain}"),
                    )
                ),
                "renewals": (f"{short} Renewals", f"renewals@{org.domain}"),
            }
            org.bulk_host = f"mail.{org.domain}"
            org.cadence = rng.choice((0, 2, 4, 4))
            org.phase = rng.randrange(max(org.cadence, 1))
            org.account_no = f"{rng.randint(100000, 999999)}"
            lo, hi = kind.monthly
            base = rng.uniform(lo, hi)
            org.base_amount = round(base) if kind.whole else round(base, 2)
            orgs.append(org)
        # Most partners mail a monthly invoice; one bills through a portal only (never the
        # European or British one: their amount formats must be in the sample).
        usd = [i for i, o in enumerate(orgs) if o.pkind and o.pkind.currency == "USD"]
        no_mail = set(rng.sample(usd, 1 if len(orgs) >= 6 and usd else 0))
        for i, org in enumerate(orgs):
            org.invoice_day = 0 if i in no_mail else rng.randint(1, 28)
        billed = [o for i, o in enumerate(orgs) if i in usd and i not in no_mail]
        for org in rng.sample(billed, min(2, len(billed) - 1)) if len(orgs) >= 4 else ():
            short = org.name.removesuffix(" GmbH").removesuffix(" AG").removesuffix(" Ltd")
            org.systems["billing"] = (f"{short} via {_PLATFORM_NAME}", _PLATFORM_ADDRESS)
            org.billing_reply = f"billing@{org.domain}"
        return orgs

    def _make_generics(self, n: int) -> list[_Org]:
        rng = self.rng
        pool = [(k, name) for k in _GENERIC_KINDS for name in k.names]
        rng.shuffle(pool)
        orgs: list[_Org] = []
        for kind, name in pool[:n]:
            org = self._base_org(name, False, "USD")
            org.gkind = kind
            style = rng.randrange(5)
            sales = (
                "Account Executive", "Business Development Representative", "Sales Director",
                "Enterprise Account Manager", "Founder & CEO", "Partnerships Lead",
            )  # fmt: skip
            org.people = [
                self._person(org, "sales", rng.choice(sales), style)
                for _ in range(rng.choice((1, 1, 2)))
            ]
            org.bulk_host = rng.choice(
                (f"email.{org.domain}", f"news.{org.domain}", f"{_ascii(name)[:8]}.sendrelay.test")
            )
            org.systems = {
                "news": rng.choice(
                    (
                        (name, f"news@{org.domain}"),
                        (f"{name} Events", f"events@{org.domain}"),
                        (f"The {name} Team", f"marketing@{org.domain}"),
                        (name, f"hello@{org.domain}"),
                    )
                )
            }
            org.cadence = rng.choice((0, 3, 4, 6, 6, 8))
            org.phase = rng.randrange(max(org.cadence, 1))
            orgs.append(org)
        # Some generic vendors write for the first time in the new week (the digest shows them).
        for org in rng.sample(orgs, max(1, len(orgs) // 7) if len(orgs) >= 4 else 0):
            org.new_this_week = True
        return orgs

    # -- time ------------------------------------------------------------------------------------

    def _when(
        self,
        lo: datetime,
        hi: datetime,
        tz: timezone,
        hours: tuple[float, float] = (8.0, 18.0),
        weekends: bool = False,
    ) -> datetime:
        """A plausible send time in [lo, hi): local office hours on a working day."""
        rng = self.rng
        if hi <= lo:
            return lo
        days = max(1, (hi - lo).days + 1)
        for _ in range(30):
            day = (lo.astimezone(tz) + timedelta(days=rng.randrange(days))).date()
            if not weekends and day.weekday() >= 5:
                continue
            seconds = int(rng.uniform(hours[0], hours[1]) * 3600)
            local = datetime.combine(day, time(0), tz) + timedelta(seconds=seconds)
            when = local.astimezone(UTC)
            if lo <= when < hi:
                return when
        return lo + (hi - lo) * rng.random()

    def _later(self, when: datetime, tz: timezone, days: tuple[float, float]) -> datetime:
        """A working-hours time some days after `when` (used for follow-ups in a thread)."""
        lo = when + timedelta(days=days[0])
        return self._when(lo, when + timedelta(days=days[1]) + timedelta(hours=10), tz)

    def _week_count(self) -> int:
        return self.weeks + 1  # history weeks + the new week

    def _boost(self, week: int) -> float:
        # The new week is a busy one (quarter-end, after a trip): more mail than a typical week,
        # so every kind shows up in it.
        return 1.8 if week == self.weeks else 1.0

    # -- ids ---------------------------------------------------------------------------------------

    def _hex(self, n: int) -> str:
        return f"{self.rng.getrandbits(4 * n):0{n}x}"

    def _msgid(self, platform: str, domain: str, when: datetime) -> str:
        while True:
            if platform == "outlook":
                host = f"{self._hex(4).upper()}PR{self.rng.randint(10, 19)}MB"
                host += str(self.rng.randint(1000, 9999))
                mid = f"<{host}{self._hex(12).upper()}@{host}.namprd.prod.outlook.test>"
            elif platform == "gmail":
                token = base64.b32encode(self.rng.getrandbits(160).to_bytes(20, "big")).decode()
                mid = f"<CA{token.rstrip('=')}@mail.gmail.test>"
            elif platform == "system":
                mid = f"<{int(when.timestamp())}.{self._hex(10)}@{domain}>"
            else:
                mid = f"<{when:%Y%m%d%H%M%S}.{self._hex(8)}@{domain}>"
            if mid not in self.ids:
                self.ids.add(mid)
                return mid

    # -- writing a message ---------------------------------------------------------------------

    def _emit(
        self,
        *,
        when: datetime,
        kind: str,
        org: _Org | None,
        sender: tuple[str, str],
        subject: str,
        body: _Part,
        facts: dict[str, object] | None = None,
        to: Sequence[tuple[str, str]] = (),
        cc: Sequence[tuple[str, str]] = (),
        thread: str = "",
        in_reply_to: str = "",
        references: Sequence[str] = (),
        bulk: bool = False,
        system: bool = False,
        reply_to: tuple[str, str] | None = None,
        extra: Sequence[tuple[str, str]] = (),
        folder: str = "",
        archive: bool = False,
        tz: timezone | None = None,
        platform: str = "",
    ) -> str:
        """Writes one message into the drafts and returns its Message-ID."""
        rng = self.rng
        # The Date header has whole seconds; the ground-truth date must be the same instant.
        when = when.astimezone(UTC).replace(microsecond=0)
        domain = sender[1].split("@", 1)[1]
        if not platform:
            platform = "system" if (system or bulk) else (org.platform if org else "outlook")
        mid = self._msgid(platform, org.bulk_host if bulk and org else domain, when)
        zone = tz or (org.tz if org else self.buyer_tz)
        lines = [
            f"Date: {format_datetime(when.astimezone(zone))}",
            _addr_header("From", [sender]),
            _addr_header("To", list(to) or [(self.buyer.name, self.buyer.address)]),
        ]
        if cc:
            lines.append(_addr_header("Cc", cc))
        lines.append(_header("Subject", subject.replace(_NB, " ")))
        lines.append(f"Message-ID: {mid}")
        if in_reply_to:
            lines.append(f"In-Reply-To: {in_reply_to}")
        if references:
            lines.append(_fold_ascii("References", " ".join(references)))
        if reply_to:
            lines.append(_addr_header("Reply-To", [reply_to]))
        if bulk and org:
            token = self._hex(16)
            list_id = rng.choice(
                (f"{org.name} News <news.{org.domain}>", f"<{self._hex(8)}.{org.bulk_host}>")
            )
            lines.append(_header("List-Id", list_id))
            lines.append(
                f"List-Unsubscribe: <mailto:unsubscribe-{token}@{org.bulk_host}>,\n"
                f" <https://{org.bulk_host}/u/{token}>"
            )
            lines.append("List-Unsubscribe-Post: List-Unsubscribe=One-Click")
            lines.append("Precedence: bulk")
            lines.append(f"Feedback-ID: {self._hex(6)}:{_ascii(org.name)[:10]}:campaign")
        elif system:
            lines.append("Auto-Submitted: auto-generated")
        for name, value in extra:
            lines.append(_header(name, value))
        if not (bulk or system) and rng.random() < 0.5:
            lines.append(
                rng.choice(
                    (
                        "X-Mailer: Microsoft Outlook 16.0",
                        "User-Agent: Mozilla Thunderbird",
                        "X-Mailer: Apple Mail (2.3826.400.131.1.6)",
                        "X-Mailer: iPhone Mail (21G93)",
                    )
                )
            )
        lines.append("MIME-Version: 1.0")
        head = "\n".join(lines)
        data = (head + "\n" + self._render(body)).replace(_NB, " ")
        raw = data.encode("utf-8").replace(b"\n", b"\r\n")
        if when < self.split:
            self.wrote.add(sender[1])
        if not raw.endswith(b"\r\n"):
            raw += b"\r\n"
        self.drafts.append(
            _Draft(
                when=when,
                kind=kind,
                vendor=org.name if org else "",
                folder=folder or (self._folder(org) if org else ""),
                facts=facts or {},
                data=raw,
                thread=thread,
                archive=archive,
            )
        )
        return mid

    def _folder(self, org: _Org) -> str:
        return VENDOR_PREFIX + org.name if org.partner else GENERIC_FOLDER

    def _render(self, part: _Part) -> str:
        """The part's own headers, a blank line and its body (all with LF line endings)."""
        if part.children:
            boundary = f"----=_Part_{self._hex(8)}_{self._hex(12)}"
            out = [f'Content-Type: {part.content_type};\n boundary="{boundary}"', ""]
            if part.content_type == "multipart/alternative" or self.rng.random() < 0.5:
                out.append("This is a multi-part message in MIME format.")
            out.append("")
            for child in part.children:
                out.append(f"--{boundary}")
                out.append(self._render(child))
            out.append(f"--{boundary}--")
            return "\n".join(out) + "\n"
        if part.payload:
            body = base64.encodebytes(part.payload).decode("ascii")
            return (
                f'Content-Type: {part.content_type}; name="{part.filename}"\n'
                f'Content-Disposition: attachment; filename="{part.filename}"\n'
                "Content-Transfer-Encoding: base64\n\n" + body
            )
        text = part.text.replace(_NB, " ")
        if not text.endswith("\n"):
            text += "\n"
        charset, cte, encoded = _encode_body(text, part.cte)
        return (
            f'Content-Type: {part.content_type}; charset="{charset}"\n'
            f"Content-Transfer-Encoding: {cte}\n\n" + encoded.decode("ascii")
        )

    # -- prose ---------------------------------------------------------------------------------

    def _pick(self, options: Sequence[str], **values: object) -> str:
        return self.rng.choice(options).format(**values)

    def _prose(self, blocks: Sequence[str], wrap: bool) -> str:
        """Paragraphs joined by blank lines; single-line paragraphs wrapped if the client wraps."""
        out = []
        for block in blocks:
            if wrap and "\n" not in block and len(block) > 72:
                block = textwrap.fill(block, 72, break_on_hyphens=False, break_long_words=False)
            out.append(block)
        return "\n\n".join(out)

    def _greeting(self, personal: bool = True) -> str:
        b = self.buyer
        if not personal:
            return self.rng.choice(
                ("Dear Customer,", "Hello,", f"Dear {b.company} team,", f"Hi {b.first_name},")
            )
        return self.rng.choice(
            (
                f"Hi {b.first_name},",
                f"Hello {b.first_name},",
                f"Dear {b.name},",
                f"Good morning {b.first_name},",
                f"{b.first_name},",
                f"Hi {b.first_name} -",
                f"Dear {b.first_name},",
            )
        )

    def _closing(self) -> str:
        return self.rng.choice(
            (
                "Best regards,", "Kind regards,", "Thanks,", "Best,", "Many thanks,",
                "Regards,", "Thank you,", "Cheers,", "All the best,", "Thanks again,",
            )
        )  # fmt: skip

    def _signature(self, org: _Org, p: _Person) -> str:
        web = f"www.{org.domain}"
        style = org.sig_style
        if style == 0:
            sig = f"{p.name}\n{p.title}\n{org.name}\n{p.phone}\n{web}"
        elif style == 1:
            sig = f"{p.name} | {p.title} | {org.name}\nT: {p.phone} | {web}"
        elif style == 2:
            sig = f"--\n{p.name}\n{p.title}, {org.name}\nDirect: {p.phone}\n{p.address}"
        else:
            where = f"{org.street and org.street + ', '}{org.city}"
            sig = f"{p.first}\n\n{p.name}\n{p.title}\n{org.name} | {where}\n{p.phone}"
        if org.disclaimer and self.rng.random() < 0.8:
            sig += "\n\n" + org.disclaimer
        return sig

    def _system_footer(self, org: _Org) -> str:
        where = f"{org.street and org.street + ', '}{org.city}"
        return self.rng.choice(
            (
                f"This is an automated message from {org.name}. Please do not reply to this email.",
                f"You are receiving this notification because you are a registered contact for "
                f"account {org.account_no or self._hex(6)}.\n{org.name}, {where}",
                f"{org.name} | {where} | www.{org.domain}",
            )
        )

    def _person_mail(
        self,
        org: _Org,
        p: _Person,
        blocks: Sequence[str],
        *,
        greeting: str | None = None,
        html_chance: float = 0.3,
        quote: str = "",
    ) -> _Part:
        """A mail written by a person: greeting, paragraphs, closing, signature (+ HTML twin)."""
        text = self._prose(
            [
                greeting or self._greeting(),
                *blocks,
                self._closing() + "\n" + self._signature(org, p),
            ],
            org.wrap,
        )
        if quote:
            text += "\n\n" + quote
        if self.rng.random() >= html_chance:
            return _text_part(text)
        html = (
            '<html><head><meta http-equiv="Content-Type" content="text/html; charset=utf-8">\n'
            "<style>p{margin:0 0 12px 0} .sig{color:#555;font-size:10pt}</style></head>\n"
            '<body><div style="font-family:Calibri,Arial,sans-serif;font-size:11pt">\n'
            f"{_html_paragraphs(text.replace(_NB, ' '))}\n"
            f'<p class="sig"><a href="https://www.{org.domain}/">www.{org.domain}</a></p>\n'
            "</div></body></html>"
        )
        return _Part("multipart/alternative", children=[_text_part(text), _text_part(html, "html")])

    def _system_mail(
        self, org: _Org, blocks: Sequence[str], *, html_chance: float = 0.5, personal: bool = False
    ) -> _Part:
        greeting, footer = self._greeting(personal), self._system_footer(org)
        text = "\n\n".join([greeting, *blocks, footer])
        if self.rng.random() >= html_chance:
            return _text_part(text)
        rows = []
        for block in blocks:
            if "\n" in block and ": " in block:
                # "Key: value" lines become a two-column table, the others span both columns.
                cells = []
                for line in block.replace(_NB, " ").split("\n"):
                    key, sep, value = line.partition(": ")
                    if sep:
                        cells.append(
                            f'<tr><td style="color:#666">{escape(key)}</td>'
                            f"<td><b>{escape(value)}</b></td></tr>"
                        )
                    else:
                        cells.append(f'<tr><td colspan="2">{escape(line)}</td></tr>')
                rows.append(
                    '<table role="presentation" cellpadding="4" style="border-collapse:collapse">\n'
                    + "\n".join(cells)
                    + "\n</table>"
                )
            else:
                rows.append(_html_paragraphs(block.replace(_NB, " ")))
        html = self._html_shell(
            org,
            "\n".join(rows),
            footer=escape(footer).replace("\n", "<br>\n"),
            greeting=escape(greeting),
        )
        return _Part("multipart/alternative", children=[_text_part(text), _text_part(html, "html")])

    def _html_shell(self, org: _Org, inner: str, *, footer: str, greeting: str = "") -> str:
        host = org.bulk_host or f"www.{org.domain}"
        return (
            '<!DOCTYPE html>\n<html><head><meta charset="utf-8">\n'
            f"<title>{escape(org.name)}</title>\n<style>\n"
            "body{margin:0;padding:0;background:#f4f5f7;font-family:Helvetica,Arial,sans-serif}\n"
            ".wrap{max-width:600px;margin:0 auto;background:#ffffff;padding:24px}\n"
            f"h1{{color:{org.color};font-size:22px}} h2{{font-size:17px;margin:18px 0 6px}}\n"
            f".btn{{background:{org.color};color:#fff;padding:10px 18px;border-radius:4px;"
            "text-decoration:none;display:inline-block}\n"
            ".foot{font-size:11px;color:#888;margin-top:24px}\n"
            "@media (max-width:620px){.wrap{padding:12px}}\n</style></head>\n"
            '<body><div class="wrap">\n'
            f'<img src="https://{host}/assets/{self._hex(8)}/logo.png" alt="{escape(org.name)}"'
            ' width="160" height="40">\n'
            + (f"<p>{greeting}</p>\n" if greeting else "")
            + inner
            + f'\n<div class="foot">{footer}</div>\n</div></body></html>'
        )

    # -- money, dates, numbers ---------------------------------------------------------------

    def _amount_text(self, org: _Org, amount: float) -> str:
        # Mostly the vendor's house style; sometimes another style of the same currency.
        currency = org.pkind.currency if org.pkind else "USD"
        if self.rng.random() < 0.8:
            style = org.money_style
        else:
            style = self.rng.choice(_MONEY_STYLES[currency])
        return _money(amount, style)

    def _date_text(self, org: _Org | None, d: date) -> str:
        if org is not None and self.rng.random() < 0.75:
            return _fmt_date(d, org.date_style)
        return _fmt_date(d, self.rng.choice(("long_us", "eu_num", "iso", "long_eu", "short_us")))

    def _order_no(self, org: _Org) -> str:
        r = self.rng
        patterns = (
            f"SO-{r.randint(100000, 999999)}",
            f"{r.randint(4000000, 4999999)}",
            f"ORD{r.randint(10000000, 99999999)}",
            f"{org.name[:2].upper()}-{r.randint(2026, 2027)}-{r.randint(10000, 99999)}",
        )
        return patterns[sum(map(ord, org.name)) % len(patterns)]

    def _po(self) -> str:
        return f"PO-{self.rng.randint(4500010000, 4500099999)}"

    def _ticket(self, org: _Org, prefix: str = "") -> str:
        prefix = prefix or ("CS", "CASE", "SR", "TKT", "REQ")[sum(map(ord, org.domain)) % 5]
        return f"{prefix}-{self.rng.randint(10000, 99999)}"

    def _tracking(self, carrier: str) -> str:
        r = self.rng
        if carrier == "Parcelway":
            return "1Z" + "".join(r.choice("0123456789ABCDEFGHJKLMNPRTVWXY") for _ in range(16))
        if carrier == "NorthStar Express":
            return f"NSX-{r.randint(10000000, 99999999)}"
        if carrier == "Blue Line Courier":
            return f"BL{r.randint(100000000000, 999999999999)}"
        return f"{r.randint(100000000000000, 999999999999999)}"

    def _pdf(self, title: str) -> bytes:
        # A tiny but well-formed-looking PDF: real invoices come with one, and the size/type of
        # attachments is one of the things the parser reports.
        body = (
            f"%PDF-1.4\n1 0 obj << /Type /Catalog /Pages 2 0 R >> endobj\n"
            f"2 0 obj << /Type /Pages /Kids [] /Count 0 >> endobj\n"
            f"% {title} {self._hex(32)}\ntrailer << /Root 1 0 R >>\n%%EOF\n"
        )
        return body.encode("latin-1", "replace")

    def _sender(self, org: _Org, role: str, new_week: bool = False) -> _Person:
        """A named contact for the role; in the new week sometimes someone never seen before."""
        if new_week and org.newcomers and self.rng.random() < 0.35:
            return org.newcomers[0]
        matches = [p for p in org.people if p.role == role]
        return self.rng.choice(matches or org.people)

    def _cc_colleague(self, chance: float) -> list[tuple[str, str]]:
        if self.rng.random() >= chance:
            return []
        c = self.colleagues[self.rng.choice(("analyst", "itops", "controller", "security"))]
        return [(c.name, c.address)]

    def _buyer_quote(self, when: datetime, text: str) -> str:
        local = when.astimezone(self.buyer_tz)
        stamp = self.rng.choice(
            (
                f"On {local:%a, %b} {local.day}, {local.year} at {local:%I:%M %p}",
                f"On {local:%d/%m/%Y %H:%M}",
                f"From: {self.buyer.name} <{self.buyer.address}>\nSent: {local:%A, %B} "
                f"{local.day}, {local.year} {local:%I:%M %p}",
            )
        )
        lines = [
            *textwrap.wrap(text, 70),
            "",
            self.buyer.name,
            self.buyer_title,
            self.buyer.company,
        ]
        quoted = "\n".join(("> " + line).rstrip() for line in lines)
        if stamp.startswith("From:"):
            return "-----Original Message-----\n" + stamp + "\n\n" + quoted
        return f"{stamp}, {self.buyer.name} <{self.buyer.address}> wrote:\n{quoted}"

    def _buyer_msgid(self, when: datetime) -> str:
        return self._msgid("outlook", self.buyer.domain, when)

    # -- partner mail --------------------------------------------------------------------------

    def invoice(
        self,
        org: _Org,
        when: datetime,
        amount: float,
        period: date,
        note: str = "",
        extra: Mapping[str, object] | None = None,
    ) -> None:
        rng = self.rng
        assert org.pkind is not None
        cur = org.pkind.currency
        no = rng.choice(
            (
                f"INV-{when.year}-{rng.randint(1000, 9999)}",
                f"{rng.randint(90000000, 99999999)}",
                f"{org.name[:3].upper()}{rng.randint(100000, 999999)}",
            )
        )
        month = f"{_MONTHS[period.month - 1]} {period.year}"
        due = when.date() + timedelta(days=rng.choice((30, 30, 45, 14)))
        amt = self._amount_text(org, amount)
        due_t = self._date_text(org, due)
        inv_date = self._date_text(org, when.astimezone(org.tz).date())
        po = self._po()
        subject = self._pick(
            (
                "Invoice {no} from {v}",
                "{v} invoice {no} - {month}",
                "Your {v} invoice for {month}",
                "Invoice #{no} is available",
                "[{v}] New invoice {no} ({amt})",
                "{month} invoice: {amt}",
                "Monthly statement - {month} - account {acct}",
                "Invoice {no} / PO {po}",
            )
            + (("Rechnung / Invoice {no}", "Rechnung {no} ({month})") if cur == "EUR" else ()),
            no=no, v=org.name, month=month, amt=amt, acct=org.account_no, po=po,
        )  # fmt: skip
        intro = self._pick(
            (
                "Please find attached invoice {no} for {month}, in the amount of {amt}.",
                "Your invoice {no} for services in {month} is now available. Amount due: {amt}.",
                "Attached is our invoice {no} covering {month}. The total due is {amt}, payable "
                "by {due}.",
                "This is a notification that invoice {no} has been issued to {co} for {amt}.",
                "Thank you for your business. Invoice {no} ({month}) totals {amt}.",
                "Enclosed please find our invoice no. {no} dated {date} over {amt}.",
            ),
            no=no, month=month, amt=amt, due=due_t, co=self.buyer.company, date=inv_date,
        )  # fmt: skip
        table = "\n".join(
            rng.sample(
                [
                    f"Invoice number: {no}",
                    f"Invoice date: {inv_date}",
                    f"Amount due: {amt}",
                    f"Due date: {due_t}",
                    f"Purchase order: {po}",
                    f"Account: {org.account_no}",
                    f"Billing period: {month}",
                ],
                5,
            )
        )
        if "Amount due" not in table:
            table += f"\nTotal: {amt}"
        terms = self._pick(
            (
                "Payment terms are net 30.",
                "Please remit payment by {due}.",
                "If you pay by ACH, please reference the invoice number on the remittance.",
                "Questions about this invoice? Reply to this email and our billing team will help.",
                "Invoices can also be viewed and paid in the customer portal.",
                "Bitte überweisen Sie den Betrag bis {due}. / Please transfer the amount by {due}.",
            )[: 6 if cur == "EUR" else 5],
            due=due_t,
        )
        blocks = [intro, table] + ([note] if note else []) + [terms]
        person = rng.random() < 0.45 and any(p.role == "billing" for p in org.people)
        if person:
            p = self._sender(org, "billing")
            body = self._person_mail(org, p, blocks, html_chance=0.2)
            sender = (p.name, p.address)
        else:
            body = self._system_mail(org, blocks, html_chance=0.6, personal=rng.random() < 0.3)
            sender = org.systems["billing"]
        if rng.random() < 0.6:
            body = _Part(
                "multipart/mixed",
                children=[
                    body,
                    _Part("application/pdf", filename=f"{no}.pdf", payload=self._pdf(no)),
                ],
            )
        facts: dict[str, object] = {
            "amount": amount,
            "currency": cur,
            "invoice_no": no,
            "due_date": due,
            "period": month,
            **(extra or {}),
        }
        via = not person and org.billing_reply
        self._emit(
            when=when, kind="invoice", org=org, sender=sender, subject=subject, body=body,
            facts=facts, cc=[self.ap_address] if rng.random() < 0.3 else [],
            system=not person, thread=f"invoice:{no}",
            reply_to=(org.name, org.billing_reply) if via else None,
        )  # fmt: skip
        if rng.random() < 0.3 and when + timedelta(days=25) < self.end:
            self.payment_receipt(org, self._later(when, org.tz, (18, 24)), amount, no)

    def payment_receipt(self, org: _Org, when: datetime, amount: float, no: str) -> None:
        amt = self._amount_text(org, amount)
        subject = self._pick(
            (
                "Payment received - thank you",
                "Payment confirmation for invoice {no}",
                "Receipt: {amt} received",
                "We received your payment ({no})",
            ),
            no=no, amt=amt,
        )  # fmt: skip
        text = self._pick(
            (
                "We have received your payment of {amt} for invoice {no}. Thank you!",
                "This confirms that payment of {amt} was applied to invoice {no} on {d}.",
                "Thank you - your remittance of {amt} has been posted to account {acct}.",
            ),
            amt=amt, no=no, d=self._date_text(org, when.date()), acct=org.account_no,
        )  # fmt: skip
        body = self._system_mail(org, [text], html_chance=0.4)
        self._emit(
            when=when, kind="payment_receipt", org=org, sender=org.systems["billing"],
            subject=subject, body=body, facts={"amount": amount, "invoice_no": no},
            system=True, thread=f"invoice:{no}",
        )  # fmt: skip

    def order_chain(self, org: _Org, when: datetime, *, deliver: bool = True) -> datetime:
        """Order confirmation, then (for vendors that ship) shipment and delivery notices."""
        rng = self.rng
        assert org.pkind is not None
        order, po = self._order_no(org), self._po()
        items = rng.sample(org.pkind.products, rng.randint(1, min(3, len(org.pkind.products))))
        lines, total = [], 0.0
        for name, lo, hi in items:
            qty = rng.choice((1, 2, 4, 5, 10, 12, 20, 25, 40))
            price = round(rng.uniform(lo, hi), 2)
            total += qty * price
            lines.append(f"{qty} x {name} @ {self._amount_text(org, price)}")
        total = round(total, 2)
        amt = self._amount_text(org, total)
        ship_by = when.date() + timedelta(days=rng.randint(2, 6))
        subject = self._pick(
            (
                "Order confirmation {o}",
                "Your order {o} has been received",
                "We've got your order! ({o})",
                "Order {o} confirmed - PO {po}",
                "Confirmation of your purchase order {po}",
                "Re: PO {po}",
            )
            + (
                ("Auftragsbestätigung / Order confirmation {o}",)
                if org.pkind.currency == "EUR"
                else ()
            ),
            o=order, po=po,
        )  # fmt: skip
        what = "Order details:\n" + "\n".join(lines) + f"\nOrder total: {amt}"
        intro = self._pick(
            (
                "Thank you for your order. We have received purchase order {po} and created "
                "order {o}.",
                "This email confirms order {o} (your PO {po}).",
                "Good news - order {o} is confirmed and being processed.",
                "We're happy to confirm your order {o} against PO {po}.",
            ),
            o=order, po=po,
        )  # fmt: skip
        tail = self._pick(
            (
                "Expected ship date: {d}.",
                "We expect to ship by {d}; you will get tracking details as soon as it leaves "
                "our warehouse.",
                "Licenses will be available in your admin console within one business day.",
                "Estimated availability: {d}.",
            )
            if org.pkind.ships
            else (
                "Licenses will be available in your admin console within one business day.",
                "The added quantities will appear on your next invoice.",
                "Services will be provisioned by {d}.",
            ),
            d=self._date_text(org, ship_by),
        )
        use_person = rng.random() < 0.35
        if use_person:
            p = self._sender(org, rng.choice(("logistics", "account_manager")), when >= self.split)
            body = self._person_mail(org, p, [intro, what, tail])
            sender = (p.name, p.address)
        else:
            body = self._system_mail(org, [intro, what, tail], html_chance=0.6)
            sender = org.systems["orders"]
        thread = f"order:{org.name}:{order}"
        first = self._emit(
            when=when, kind="order_confirmation", org=org, sender=sender, subject=subject,
            body=body, system=not use_person, thread=thread,
            facts={"order": order, "po": po, "amount": total, "currency": org.pkind.currency},
        )  # fmt: skip
        last = when
        if not org.pkind.ships:
            return last
        carrier = rng.choice(_CARRIERS)
        tracking = self._tracking(carrier)
        shipped = self._later(when, org.tz, (1, 4))
        if shipped >= self.end:
            return last
        eta = shipped.date() + timedelta(days=rng.randint(2, 5))
        self.shipment(org, shipped, order, po, carrier, tracking, eta, first, thread)
        last = shipped
        # Delivered on the ETA day; when that is after `end` the shipment is still in transit,
        # so an overdue shipment without a follow-up is only ever the planted one.
        day = datetime.combine(eta, time(0), self.buyer_tz)
        delivered = self._when(day, day + timedelta(days=1), self.buyer_tz, hours=(9, 17))
        if deliver and delivered < self.end:
            self.delivery(org, delivered, order, carrier, tracking, thread)
            last = delivered
        return last

    def shipment(
        self,
        org: _Org,
        when: datetime,
        order: str,
        po: str,
        carrier: str,
        tracking: str,
        eta: date,
        parent: str,
        thread: str,
    ) -> None:
        rng = self.rng
        eta_t = self._date_text(org, eta)
        n = rng.randint(1, 3)
        subject = self._pick(
            (
                "Your order {o} has shipped",
                "Shipment notification - PO {po}",
                "Tracking information for order {o}",
                "{v}: your items are on the way",
                "Shipped: order {o} ({c} {t})",
                "Delivery scheduled for {eta} - order {o}",
                "{n} package(s) shipped for PO {po}",
            ),
            o=order, po=po, v=org.name, c=carrier, t=tracking, eta=eta_t, n=n,
        )  # fmt: skip
        intro = self._pick(
            (
                "Your order {o} has left our warehouse.",
                "Good news! Items from order {o} have shipped.",
                "We've handed your shipment for PO {po} to {c}.",
                "The following shipment is on its way to {city}.",
            ),
            o=order, po=po, c=carrier, city=self.buyer_city[0],
        )  # fmt: skip
        details = "\n".join(
            (
                f"Carrier: {carrier}",
                f"Tracking number: {tracking}",
                f"Packages: {n}",
                f"Estimated delivery: {eta_t}",
                f"Ship to: {self.buyer.company}, Receiving Dock",
            )
        )
        tail = rng.choice(
            (
                "You can track the shipment on the carrier's website.",
                "Please inspect the packages on arrival and report any damage within 48 hours.",
                "A signature will be required at delivery.",
                "Reply to this email if anything is missing from the delivery.",
            )
        )
        use_person = rng.random() < 0.3 and any(p.role == "logistics" for p in org.people)
        if use_person:
            p = self._sender(org, "logistics")
            body = self._person_mail(org, p, [intro, details, tail])
            sender = (p.name, p.address)
        else:
            body = self._system_mail(org, [intro, details, tail], html_chance=0.65)
            sender = org.systems["orders"]
        reply = rng.random() < 0.3
        self._emit(
            when=when, kind="shipment", org=org, sender=sender, subject=subject, body=body,
            system=not use_person, thread=thread,
            in_reply_to=parent if reply else "", references=[parent] if reply else [],
            facts={"order": order, "carrier": carrier, "tracking": tracking, "eta": eta,
                   "follow_up": False},
        )  # fmt: skip

    def delivery(
        self, org: _Org, when: datetime, order: str, carrier: str, tracking: str, thread: str
    ) -> None:
        rng = self.rng
        signer = self._new_name()[0] if rng.random() < 0.2 else rng.choice(_FIRST)
        subject = self._pick(
            (
                "Delivered: order {o}",
                "Your shipment {t} was delivered",
                "Delivery confirmation - order {o}",
                "Proof of delivery for {o}",
            ),
            o=order, t=tracking,
        )  # fmt: skip
        text = self._pick(
            (
                "Your shipment ({c} {t}) was delivered at {time} and signed for by {s}.",
                "Order {o} has been delivered. Signed by: {s}.",
                "{c} reports that tracking number {t} was delivered to your receiving dock.",
            ),
            c=carrier, t=tracking, time=when.astimezone(self.buyer_tz).strftime("%I:%M %p"),
            s=signer.upper() if rng.random() < 0.5 else signer, o=order,
        )  # fmt: skip
        body = self._system_mail(org, [text], html_chance=0.5)
        self._emit(
            when=when, kind="delivery", org=org, sender=org.systems["orders"], subject=subject,
            body=body, system=True, thread=thread,
            facts={"order": order, "tracking": tracking},
        )  # fmt: skip

    def support_chain(
        self, org: _Org, when: datetime, *, updates: int, issue: str = ""
    ) -> datetime:
        rng = self.rng
        assert org.pkind is not None
        ticket = self._ticket(org)
        issue = issue or rng.choice(org.pkind.issues)
        priority = rng.choice(("P2", "P3", "P3", "P4", "High", "Normal"))
        subject = self._pick(
            (
                "[{t}] Case opened: {i}",
                "Ticket #{t} received: {i}",
                "We're looking into your request ({t})",
                "Re: {i} [Case {t}]",
                "Your support request {t} has been created",
                "{v} Support - case {t}",
            ),
            t=ticket, i=issue, v=org.name,
        )  # fmt: skip
        intro = self._pick(
            (
                "Thanks for contacting {v} Support. We have opened case {t} for: {i}.",
                "Your request has been logged as {t}. Summary: {i}.",
                "We received your report about {i} and opened ticket {t}.",
            ),
            v=org.name, t=ticket, i=issue,
        )  # fmt: skip
        sla = self._pick(
            (
                "Priority: {p}. An engineer will contact you within 4 business hours.",
                "Priority {p} - our target first response is one business day.",
                "We have assigned it priority {p} and will update you as we make progress.",
                "Please reply to this email with any logs or screenshots; keep {t} in the subject.",
            ),
            p=priority, t=ticket,
        )  # fmt: skip
        quote = ""
        buyer_id = ""
        if rng.random() < 0.4:
            # The buyer opened it by email: the case mail quotes them and threads on their mail.
            asked = when - timedelta(hours=rng.uniform(0.5, 20))
            buyer_id = self._buyer_msgid(asked)
            quote = self._buyer_quote(
                asked,
                self._pick(
                    (
                        "Hi team, we are seeing {i}. Can someone take a look today? It is "
                        "affecting several users.",
                        "Hello, reporting an issue: {i}. Please advise.",
                        "Support, {i} since this morning. What do you need from us?",
                    ),
                    i=issue,
                ),
            )
        use_person = rng.random() < 0.45
        if use_person:
            p = self._sender(org, "support", when >= self.split)
            body = self._person_mail(org, p, [intro, sla], quote=quote)
            sender = (p.name, p.address)
        else:
            text_blocks = [intro, sla] + ([quote] if quote else [])
            body = self._system_mail(org, text_blocks, html_chance=0.3, personal=True)
            sender = org.systems["support"]
        thread = f"ticket:{ticket}"
        refs = [buyer_id] if buyer_id else []
        parent = self._emit(
            when=when, kind="support_ticket", org=org, sender=sender, subject=subject, body=body,
            system=not use_person, thread=thread, in_reply_to=buyer_id, references=refs,
            cc=self._cc_colleague(0.3),
            facts={"ticket": ticket, "issue": issue, "priority": priority, "follow_up": False},
        )  # fmt: skip
        refs = [*refs, parent]
        last = when
        for i in range(updates):
            prev, last = last, self._later(last, org.tz, (0.3, 3))
            if last >= self.end:
                last = prev + (self.end - prev) * rng.uniform(0.3, 0.9)
            resolved = i == updates - 1
            p = self._sender(org, "support", last >= self.split)
            text = self._pick(
                (
                    "Quick update on {t}: we reproduced the issue and escalated it to engineering.",
                    "We have applied a fix for {t} on our side. Could you confirm that {i} no "
                    "longer occurs?",
                    "Following up on case {t}: the root cause was a configuration change on our "
                    "side, which has been reverted.",
                    "We're still working on {t}. Next update by end of day tomorrow.",
                )
                if not resolved
                else (
                    "Case {t} is now resolved. If you still see {i}, just reply and we'll reopen "
                    "it.",
                    "We're closing {t} as resolved. Thanks for your patience.",
                    "Good news: {t} is fixed. The case will close automatically in 3 days.",
                ),
                t=ticket, i=issue,
            )  # fmt: skip
            mid = self._emit(
                when=last, kind="support_update", org=org, sender=(p.name, p.address),
                subject=f"Re: {subject}" if not subject.startswith("Re:") else subject,
                body=self._person_mail(org, p, [text], html_chance=0.2),
                thread=thread, in_reply_to=refs[-1], references=list(refs),
                facts={"ticket": ticket, "status": "resolved" if resolved else "in_progress"},
            )  # fmt: skip
            refs.append(mid)
        return last

    def outage(self, org: _Org, when: datetime, *, follow_up: datetime | None) -> None:
        rng = self.rng
        assert org.pkind is not None
        inc = f"INC-{rng.randint(1000, 9999)}"
        service = rng.choice(org.pkind.services)
        start_local = when.astimezone(org.tz) - timedelta(minutes=rng.randint(10, 50))
        started = f"{start_local:%H:%M} {start_local:%Z}"
        subject = self._pick(
            (
                "[Incident] Degraded performance - {s}",
                "Service disruption: {s}",
                "{inc}: {s} unavailable",
                "Investigating: elevated error rates on {s}",
                "Outage notification - {s} ({inc})",
                "URGENT: {s} is down",
            ),
            s=service, inc=inc,
        )  # fmt: skip
        blocks = [
            self._pick(
                (
                    "We are investigating an issue affecting {s}. The problem started at about "
                    "{t}.",
                    "Since {t}, some customers are unable to use {s}. Our engineers are working "
                    "on it.",
                    "We have identified a service outage affecting {s} for customers including "
                    "{co}.",
                ),
                s=service,
                t=started,
                co=self.buyer.company,
            ),
            f"Incident: {inc}\nStatus: Investigating\n"
            f"Impact: {rng.choice(('Major', 'Partial', 'Degraded'))}",
            rng.choice(
                (
                    "We will send an update within 60 minutes.",
                    "Next update in 30 minutes or sooner if the situation changes.",
                    "We apologize for the disruption and will follow up with a root cause.",
                )
            ),
        ]
        body = self._system_mail(org, blocks, html_chance=0.7)
        sender = org.systems["status"] if rng.random() < 0.7 else org.systems["support"]
        thread = f"outage:{inc}"
        parent = self._emit(
            when=when, kind="outage", org=org, sender=sender, subject=subject, body=body,
            system=True, thread=thread,
            facts={"ticket": inc, "service": service, "follow_up": False},
        )  # fmt: skip
        if follow_up is None:
            return
        minutes = int((follow_up - when).total_seconds() // 60) + rng.randint(10, 60)
        subject2 = self._pick(
            (
                "Resolved: {s} ({inc})",
                "[Resolved] {inc} - {s}",
                "Post-incident report: {inc}",
                "Re: {orig}",
                "Update: {s} fully restored",
            ),
            s=service, inc=inc, orig=subject,
        )  # fmt: skip
        cause = rng.choice(
            (
                "a failed storage controller in one of our data centers",
                "a faulty configuration change that has been rolled back",
                "an upstream network provider outage",
                "a certificate that expired on an internal load balancer",
                "a database failover that did not complete cleanly",
            )
        )
        blocks2 = [
            self._pick(
                (
                    "The incident affecting {s} is resolved. Service was restored after about "
                    "{m} minutes.",
                    "{inc} has been resolved. Root cause: {c}.",
                    "All systems are operating normally again. The disruption to {s} was caused "
                    "by {c}.",
                ),
                s=service,
                m=minutes,
                inc=inc,
                c=cause,
            ),
            f"Incident: {inc}\nStatus: Resolved\nDuration: {minutes} minutes",
            rng.choice(
                (
                    "A full post-incident review will be published within 5 business days.",
                    "We are sorry for the impact on your team. Service credits, if any, will be "
                    "applied automatically.",
                    "If you still see problems, please open a support case and reference the "
                    "incident number.",
                )
            ),
        ]
        self._emit(
            when=follow_up, kind="outage_followup", org=org, sender=sender, subject=subject2,
            body=self._system_mail(org, blocks2, html_chance=0.7), system=True, thread=thread,
            in_reply_to=parent, references=[parent],
            facts={"ticket": inc, "service": service, "resolved": True,
                   "duration_minutes": minutes},
        )  # fmt: skip

    def maintenance(self, org: _Org, when: datetime) -> None:
        rng = self.rng
        assert org.pkind is not None
        service = rng.choice(org.pkind.services)
        day = when.date() + timedelta(days=rng.randint(4, 12))
        while day.weekday() != 5:  # maintenance windows are on Saturdays
            day += timedelta(days=1)
        d = self._date_text(org, day)
        subject = self._pick(
            (
                "Scheduled maintenance: {s} on {d}",
                "[Planned] Maintenance window {d}",
                "Planned work notification - {s}",
                "Heads-up: {s} maintenance this weekend",
            ),
            s=service, d=d,
        )  # fmt: skip
        text = [
            self._pick(
                (
                    "We will perform planned maintenance on {s} on {d} between 22:00 and 02:00 "
                    "local time.",
                    "To improve reliability, {s} will be briefly unavailable during the "
                    "maintenance window on {d}.",
                    "Please be advised of scheduled work on {s} ({d}, 23:00-03:00).",
                ),
                s=service,
                d=d,
            ),
            rng.choice(
                (
                    "No action is required on your side.",
                    "Expect up to 15 minutes of interruption during the window.",
                    "Please plan any changes on your side around this window.",
                )
            ),
        ]
        self._emit(
            when=when, kind="maintenance", org=org, sender=org.systems["status"], subject=subject,
            body=self._system_mail(org, text, html_chance=0.5), system=True,
            facts={"service": service, "window": day},
        )  # fmt: skip

    def renewal(self, org: _Org, when: datetime, renew: date) -> None:
        rng = self.rng
        assert org.pkind is not None
        contract = org.pkind.contract
        cid = f"{rng.choice(('AGR', 'CTR', 'MSA', 'SUB'))}-{rng.randint(10000, 99999)}"
        amount = round(org.base_amount * 12 * rng.uniform(0.18, 0.4), 2)
        amt = self._amount_text(org, amount)
        d = self._date_text(org, renew)
        days = (renew - when.date()).days
        subject = self._pick(
            (
                "Your {c} renews on {d}",
                "Action required: maintenance renewal due {d}",
                "Renewal quote for {c} - {cid}",
                "Upcoming contract end: {c}",
                "Reminder: {cid} expires in {n} days",
                "Renewal of your {c}",
            ),
            c=contract, d=d, cid=cid, n=days,
        )  # fmt: skip
        blocks = [
            self._pick(
                (
                    "Your {c} ({cid}) is up for renewal on {d}.",
                    "I wanted to give you early notice that agreement {cid} for the {c} ends on "
                    "{d}.",
                    "Our records show that your {c} expires on {d}, {n} days from now.",
                ),
                c=contract,
                cid=cid,
                d=d,
                n=days,
            ),
            self._pick(
                (
                    "The renewal for the next 12 months comes to {a}; the quote is attached.",
                    "Pricing for the renewal term: {a} (annual, billed in advance).",
                    "I have prepared a renewal quote of {a}, which holds if signed before {d}.",
                ),
                a=amt,
                d=d,
            ),
            rng.choice(
                (
                    "If we don't hear from you, the agreement renews automatically for 12 months.",
                    "Could we set up 30 minutes next week to review usage and options?",
                    "Please send us a purchase order or signed quote so there is no lapse in "
                    "coverage.",
                    "Let me know if you would like to adjust quantities before the renewal.",
                )
            ),
        ]
        if rng.random() < 0.6:
            p = self._sender(org, "account_manager", when >= self.split)
            body = self._person_mail(org, p, blocks)
            sender = (p.name, p.address)
        else:
            body = self._system_mail(org, blocks)
            sender = org.systems["renewals"]
        self._emit(
            when=when, kind="renewal_notice", org=org, sender=sender, subject=subject, body=body,
            cc=self._cc_colleague(0.3),
            facts={"renewal_date": renew, "contract": contract, "contract_id": cid,
                   "amount": amount, "currency": org.pkind.currency},
        )  # fmt: skip

    def termination(self, org: _Org, when: datetime, end: date) -> None:
        rng = self.rng
        assert org.pkind is not None
        thing = org.pkind.discontinued
        d = self._date_text(org, end)
        subject = self._pick(
            (
                "Important: discontinuation of {t}",
                "Notice of termination - {t}",
                "End of service notice: {t}",
                "We're retiring {t}",
                "Changes to your {v} services effective {d}",
            ),
            t=thing, v=org.name, d=d,
        )  # fmt: skip
        blocks = [
            self._pick(
                (
                    "We are writing to let you know that {v} will discontinue {t}, effective {d}.",
                    "After careful review, we have decided to terminate {t}. Service ends on {d}.",
                    "This is formal notice that {t} will no longer be offered after {d}.",
                ),
                v=org.name,
                t=thing,
                d=d,
            ),
            rng.choice(
                (
                    "Your account team will contact you to discuss alternatives and a migration "
                    "plan.",
                    "Existing commitments will be honoured until the end date; no new orders can "
                    "be placed.",
                    "We understand this may affect your operations and are offering a 20% "
                    "credit toward the replacement service.",
                )
            ),
        ]
        p = self._sender(org, "account_manager", when >= self.split)
        if rng.random() < 0.5:
            body, sender, system = self._person_mail(org, p, blocks), (p.name, p.address), False
        else:
            body, sender, system = self._system_mail(org, blocks), org.systems["orders"], True
        self._emit(
            when=when, kind="termination", org=org, sender=sender, subject=subject, body=body,
            system=system, facts={"end_date": end, "product": thing},
        )  # fmt: skip

    def end_of_life(self, org: _Org, when: datetime, end: date) -> None:
        assert org.pkind is not None
        product = org.pkind.eol
        last_order = end - timedelta(days=self.rng.choice((90, 120, 180)))
        subject = self._pick(
            (
                "End-of-life announcement: {p}",
                "EOL/EOS notice for {p}",
                "Product lifecycle update: {p}",
            ),
            p=product,
        )
        blocks = [
            f"{org.name} is announcing the end of life of {product}.",
            f"Last order date: {self._date_text(org, last_order)}\n"
            f"End of support: {self._date_text(org, end)}",
            "We recommend planning the migration to the successor product now. Your account "
            "manager can share trade-in pricing.",
        ]
        self._emit(
            when=when, kind="end_of_life", org=org, sender=org.systems["news"], subject=subject,
            body=self._system_mail(org, blocks, html_chance=0.8), system=True,
            facts={"end_date": end, "product": product},
        )  # fmt: skip

    def price_increase(self, org: _Org, when: datetime, effective: date) -> None:
        rng = self.rng
        pct = rng.choice((4, 5, 6, 7, 8, 9, 12, 15))
        d = self._date_text(org, effective)
        subject = self._pick(
            (
                "Price adjustment effective {d}",
                "Important update to your pricing",
                "Notice of price increase - {v}",
                "{y} price list update",
                "Upcoming changes to {v} pricing",
            ),
            d=d, v=org.name, y=effective.year,
        )  # fmt: skip
        reason = rng.choice(
            (
                "rising component and energy costs",
                "continued investment in security and reliability",
                "increases in labor and logistics costs",
                "inflation over the past two years",
            )
        )
        blocks = [
            self._pick(
                (
                    "Due to {r}, list prices will increase by {p}% effective {d}.",
                    "Starting {d}, we are adjusting our prices by {p}%, reflecting {r}.",
                    "We are writing to inform you of a {p}% price increase taking effect on {d}.",
                ),
                r=reason,
                p=pct,
                d=d,
            ),
            rng.choice(
                (
                    "Orders placed before the effective date will be honoured at current prices.",
                    "Your contracted rates stay fixed until your next renewal.",
                    "Please reach out to your account manager with any questions.",
                )
            ),
        ]
        if rng.random() < 0.5:
            p = self._sender(org, "account_manager", when >= self.split)
            body, sender = self._person_mail(org, p, blocks), (p.name, p.address)
        else:
            body, sender = self._system_mail(org, blocks), org.systems["news"]
        self._emit(
            when=when, kind="price_increase", org=org, sender=sender, subject=subject, body=body,
            facts={"percent": pct, "effective_date": effective},
        )  # fmt: skip

    def account_mail(self, org: _Org, when: datetime) -> None:
        """The account manager writing: QBRs, quotes (often replies to the buyer), check-ins."""
        rng = self.rng
        assert org.pkind is not None
        new = when >= self.split
        p = self._sender(org, "account_manager", new)
        item, lo, hi = rng.choice(org.pkind.products)
        qty = rng.choice((5, 10, 20, 25, 40, 50, 100))
        price = round(rng.uniform(lo, hi) * 0.93, 2)
        meet = when.date() + timedelta(days=rng.randint(3, 12))
        meet_t = self._date_text(org, meet)
        kind = rng.choice(("meeting", "quote", "quote", "checkin", "product_update"))
        quote = ""
        in_reply_to, refs = "", []
        facts: dict[str, object] = {}
        if kind == "meeting":
            subject = self._pick(
                (
                    "Quarterly business review - proposed times",
                    "QBR agenda for {d}",
                    "Catch-up next week?",
                    "Re: Meeting to discuss {y} roadmap",
                    "Time for a quick sync on pricing?",
                ),
                d=meet_t, y=meet.year + 1,
            )  # fmt: skip
            blocks = [
                self._pick(
                    (
                        "I'd like to schedule our quarterly business review. Would {d} at 10:00 "
                        "or 14:00 work for you?",
                        "Could we find 45 minutes on {d} to go over usage, open tickets and the "
                        "roadmap for next year?",
                        "It's been a while since we last spoke - are you free for a call on {d}?",
                    ),
                    d=meet_t,
                ),
                rng.choice(
                    (
                        "Happy to include your finance team if it helps with budget planning.",
                        "I'll bring our product specialist to walk through what's new.",
                        "Agenda: spend review, service performance, upcoming renewals, pricing.",
                    )
                ),
            ]
            facts = {"meeting_date": meet}
        elif kind == "quote":
            each = self._amount_text(org, price)
            total = self._amount_text(org, round(price * qty, 2))
            subject = self._pick(
                (
                    "Quote for {q} x {i}",
                    "Re: Pricing for {i}",
                    "Updated proposal - {i}",
                    "Re: Quote request - {q} x {i}",
                    "Your quote Q-{n} is ready",
                ),
                q=qty, i=item, n=rng.randint(10000, 99999),
            )  # fmt: skip
            blocks = [
                self._pick(
                    (
                        "As requested, here is pricing for {q} x {i}: {e} each, {t} in total.",
                        "Thanks for the request. I can offer {i} at {e} per unit ({t} for {q}).",
                        "Please find our quote for {q} x {i} attached - {t} including our "
                        "volume discount.",
                    ),
                    q=qty,
                    i=item,
                    e=each,
                    t=total,
                ),
                rng.choice(
                    (
                        "The quote is valid for 30 days.",
                        "Pricing holds until the end of the quarter.",
                        "Let me know if you need a different configuration.",
                        "If you can commit this month I can take another 3% off.",
                    )
                ),
            ]
            facts = {"amount": round(price * qty, 2), "currency": org.pkind.currency}
            if subject.startswith("Re:") or rng.random() < 0.3:
                asked = when - timedelta(hours=rng.uniform(2, 70))
                in_reply_to = self._buyer_msgid(asked)
                refs = [in_reply_to]
                quote = self._buyer_quote(
                    asked,
                    self._pick(
                        (
                            "Hi {f}, could you send pricing for {q} of the {i}? We need them "
                            "before the end of the quarter.",
                            "{f} - what's the best you can do on {q} x {i}? Competing quote "
                            "on my desk.",
                            "Hello {f}, please quote {q} x {i}, delivery to our main office.",
                        ),
                        f=p.first,
                        q=qty,
                        i=item,
                    ),
                )
                if not subject.startswith("Re:"):
                    subject = "Re: " + subject
        elif kind == "checkin":
            subject = self._pick(
                (
                    "Checking in",
                    "How is everything going with {b}?",
                    "Following up on our last call",
                    "A few updates from {v}",
                ),
                b=org.pkind.blurb, v=org.name,
            )  # fmt: skip
            blocks = [
                self._pick(
                    (
                        "Just checking in to see how things are going with {b}.",
                        "Following up on our conversation - I've shared the usage report with "
                        "your team.",
                        "I wanted to make sure you saw the updated pricing for next year and the "
                        "new support options.",
                    ),
                    b=org.pkind.blurb,
                ),
                rng.choice(
                    (
                        "Anything I can help with before year-end?",
                        "Let me know if a short call would be useful.",
                        "As always, happy to help with any open items.",
                    )
                ),
            ]
        else:
            subject = self._pick(
                (
                    "Heads-up: what's new for {i}",
                    "New option for your {b}",
                    "Preview: next year's roadmap",
                ),
                i=item, b=org.pkind.blurb,
            )  # fmt: skip
            blocks = [
                self._pick(
                    (
                        "I wanted you to hear it from me first: we're launching a new tier for "
                        "{i} next month, with better pricing for volumes like yours.",
                        "Our product team has shared next year's roadmap. A few items are "
                        "directly relevant to your {b}.",
                    ),
                    i=item,
                    b=org.pkind.blurb,
                ),
                "Happy to walk you through it in a short meeting.",
            ]
        cc = self._cc_colleague(0.35)
        self._emit(
            when=when, kind=kind, org=org, sender=(p.name, p.address), subject=subject,
            body=self._person_mail(org, p, blocks, quote=quote), cc=cc, facts=facts,
            in_reply_to=in_reply_to, references=refs,
        )  # fmt: skip

    def contact_note(self, org: _Org, p: _Person, when: datetime) -> None:
        """A short note from a contact in their role: statement, delivery plan, service review."""
        rng = self.rng
        assert org.pkind is not None
        facts: dict[str, object] = {}
        if p.role == "billing":
            kind = "statement"
            balance = round(org.base_amount * rng.uniform(0.5, 2.5), 2)
            amt = self._amount_text(org, balance)
            subject = self._pick(
                (
                    "Statement of account {a}",
                    "Open items on your account",
                    "Updated remittance details for {v}",
                    "Past due reminder - account {a}",
                ),
                a=org.account_no, v=org.name,
            )  # fmt: skip
            blocks = [
                self._pick(
                    (
                        "Attached is your statement of account. The open balance is {b}.",
                        "Our records show an open balance of {b} on account {a}; could you "
                        "check with your accounts payable team?",
                        "Please note our new bank details for remittances from next month. The "
                        "current open balance is {b}.",
                    ),
                    b=amt,
                    a=org.account_no,
                ),
                "Happy to send copies of any invoice you are missing.",
            ]
            facts = {"amount": balance, "currency": org.pkind.currency}
        elif p.role == "logistics":
            kind = "logistics_update"
            subject = self._pick(
                (
                    "Delivery schedule for next week",
                    "Backorder update",
                    "Receiving hours at your dock",
                    "Carrier change for {c} deliveries",
                ),
                c=self.buyer_city[0],
            )
            blocks = [
                rng.choice(
                    (
                        "Two items on your open orders are backordered; the new ship date is "
                        "about ten days out.",
                        "Could you confirm your receiving hours? Our carrier would like to "
                        "deliver before 10am.",
                        "We are switching carriers for your region, so tracking numbers will "
                        "look different from next week.",
                    )
                ),
            ]
        else:
            kind = "service_review"
            subject = self._pick(
                (
                    "Monthly service report",
                    "Your open cases - summary",
                    "Service review for {m}",
                ),
                m=_MONTHS[when.month - 1],
            )
            blocks = [
                self._pick(
                    (
                        "Here is the monthly summary for {co}: {n} cases opened, all within SLA.",
                        "Ahead of our service review: availability of {s} was 99.9% last month.",
                        "I went through your open cases; only one is still waiting on us.",
                    ),
                    co=self.buyer.company,
                    n=rng.randint(2, 9),
                    s=rng.choice(org.pkind.services),
                ),
                "Let me know if you'd like to go through them on a call.",
            ]
        self._emit(
            when=when, kind=kind, org=org, sender=(p.name, p.address), subject=subject,
            body=self._person_mail(org, p, blocks), facts=facts, cc=self._cc_colleague(0.2),
        )  # fmt: skip

    def introduction(self, org: _Org, when: datetime) -> None:
        """A new contact at a known partner introduces themselves (a sender never seen before)."""
        p = org.newcomers[0]
        subject = self._pick(
            (
                "Introduction - your new contact at {v}",
                "Hello from {v}",
                "{n} - new {t} for {co}",
            ),
            v=org.name, n=p.name, t=p.title, co=self.buyer.company,
        )  # fmt: skip
        assert org.pkind is not None
        blocks = [
            self._pick(
                (
                    "I'm {n}, and I've recently joined {v} as your {t}. I'll be looking after "
                    "{co}'s {b} going forward.",
                    "My name is {n}; I'm taking over your account at {v} from my colleague.",
                ),
                n=p.name,
                v=org.name,
                t=p.title,
                co=self.buyer.company,
                b=org.pkind.blurb,
            ),
            "I'd love to set up a short introductory call to understand your priorities for next "
            "year, including the upcoming renewal and open orders.",
        ]
        self._emit(
            when=when, kind="introduction", org=org, sender=(p.name, p.address), subject=subject,
            body=self._person_mail(org, p, blocks), facts={"new_contact": p.address},
        )  # fmt: skip

    def newsletter(self, org: _Org, when: datetime) -> None:
        """An HTML-only bulk newsletter (partners send them too, which keeps the task honest)."""
        rng = self.rng
        month = _MONTHS[when.month - 1]
        if org.pkind:
            topics = [
                f"What's new in {rng.choice(org.pkind.products)[0]}",
                f"Customer story: how a {self.industry} firm modernised its {org.pkind.blurb}",
                f"Service update: improvements to {rng.choice(org.pkind.services)}",
                "Upcoming webinar: planning your budget for next year",
                f"Pricing and packaging changes for {when.year + 1}",
            ]
        else:
            assert org.gkind is not None
            topics = [
                *org.gkind.titles,
                f"Why {org.gkind.pains[0]} costs more than you think",
                f"New: our {org.gkind.offer} now integrates with your ERP",
                "Customer spotlight: 3 lessons from a mid-size IT team",
            ]
        picked = rng.sample(topics, 3)
        subject = self._pick(
            (
                "{v} Newsletter - {m} {y}",
                "What's new at {v} this month",
                "{m} product updates from {v}",
                "{t}",
                "The {v} Digest: {t}",
                "Your {m} briefing",
            ),
            v=org.name, m=month, y=when.year, t=picked[0],
        )  # fmt: skip
        host = org.bulk_host
        uid = self._hex(10)
        articles = "\n".join(
            f'<h2><a href="https://{host}/c/{self._hex(8)}?u={uid}">{escape(t)}</a></h2>\n'
            f"<p>{escape(rng.choice(('Read the full story and see the numbers.', 'Three minutes to read, with a checklist you can use today.', 'Plus: what our customers asked most this month.', 'Includes pricing examples and a free template.')))}</p>\n"  # noqa: E501
            f'<img src="https://{host}/img/{self._hex(8)}.jpg" alt="" width="560">'
            for t in picked
        )
        inner = (
            f'<div style="display:none">{escape(picked[1])} and more inside.</div>\n'
            f"<h1>{escape(subject)}</h1>\n{articles}\n"
            f'<p><a class="btn" href="https://{host}/c/{self._hex(8)}?u={uid}">'
            f"{escape(rng.choice(('Read more', 'See all updates', 'Visit the blog')))}</a></p>"
        )
        footer = (
            f"You are receiving this email because you are subscribed to {escape(org.name)} "
            f'news. <a href="https://{host}/u/{uid}">Unsubscribe</a> | '
            f'<a href="https://{host}/p/{uid}">Manage preferences</a><br>'
            f"{escape(org.name)}, {escape(org.street or '1 Market Square')}, {escape(org.city)}"
            f'\n<img src="https://{host}/o/{self._hex(16)}.gif" width="1" height="1" alt="">'
        )
        html = self._html_shell(org, inner, footer=footer)
        self._emit(
            when=when, kind="newsletter", org=org, sender=org.systems["news"], subject=subject,
            body=_text_part(html, "html", rng.choice(("auto", "base64", "qp"))), bulk=True,
            facts={"topics": tuple(picked)},
        )  # fmt: skip

    def webinar(self, org: _Org, when: datetime, *, event: bool = False) -> None:
        rng = self.rng
        if org.gkind:
            title = rng.choice(org.gkind.titles)
        else:
            assert org.pkind is not None
            title = f"Getting more from your {org.pkind.blurb}"
        day = when.date() + timedelta(days=rng.randint(6, 20))
        while day.weekday() not in _WEBINAR_DAYS:
            day += timedelta(days=1)
        d = self._date_text(org, day)
        host = org.bulk_host
        if event:
            name, city = rng.choice(_EVENTS)
            subject = self._pick(
                (
                    "Join us at {e} in {c}",
                    "VIP dinner invitation - {c}, {d}",
                    "Meet {v} at {e} (booth #{b})",
                    "You're invited: executive roundtable in {c}",
                    "{f}, your pass to {e}",
                ),
                e=name, c=city, d=d, v=org.name, b=rng.randint(100, 999), f=self.buyer.first_name,
            )  # fmt: skip
            lead = self._pick(
                (
                    "We'd love to host you at {e} in {c} on {d}.",
                    "Join a small group of IT and procurement leaders for dinner in {c} on {d}.",
                    "Our team will be at {e} on {d} - stop by for a demo and a coffee.",
                ),
                e=name, c=city, d=d,
            )  # fmt: skip
            kind = "event_invite"
            title = name
        else:
            subject = self._pick(
                (
                    "Webinar: {t} - {d}",
                    "You're invited: live session on {t}",
                    "[Webinar] {t}",
                    "Last chance to register: {t}",
                    "Save your seat - {t}",
                ),
                t=title, d=d,
            )  # fmt: skip
            lead = self._pick(
                (
                    "Join our experts on {d} at 11:00 ET for a 45-minute live session: {t}.",
                    "On {d} we're hosting a webinar, \u201c{t}\u201d, with live Q&A.",
                    "Can't make it live on {d}? Register anyway and we'll send the recording.",
                ),
                t=title, d=d,
            )  # fmt: skip
            kind = "webinar"
        points = rng.sample(
            [
                "Benchmarks from 200+ IT teams",
                "A live demo, no slides",
                "Pricing models compared",
                "Q&A with our product lead",
                "A checklist to take back to your team",
                "Case study from a customer in your industry",
            ],
            3,
        )
        text = "\n\n".join(
            [
                self._greeting(),
                lead,
                "\n".join("- " + x for x in points),
                f"Register: https://{host}/r/{self._hex(10)}",
                f"Unsubscribe: https://{host}/u/{self._hex(10)}",
            ]
        )
        inner = (
            f"<h1>{escape(subject)}</h1>\n<p>{escape(lead.replace(_NB, ' '))}</p>\n<ul>"
            + "".join(f"<li>{escape(x)}</li>" for x in points)
            + f'</ul>\n<p><a class="btn" href="https://{host}/r/{self._hex(10)}">'
            + "Register now</a></p>"
        )
        html = self._html_shell(
            org,
            inner,
            footer=f'<a href="https://{host}/u/{self._hex(10)}">Unsubscribe</a>',
        )
        if rng.random() < 0.5:
            body = _Part(
                "multipart/alternative", children=[_text_part(text), _text_part(html, "html")]
            )
        else:
            body = _text_part(html, "html")
        self._emit(
            when=when, kind=kind, org=org, sender=org.systems["news"], subject=subject,
            body=body, bulk=rng.random() < 0.85, facts={"event_date": day, "title": title},
        )  # fmt: skip

    # -- generic vendor mail ------------------------------------------------------------------

    def pitch_sequence(
        self,
        org: _Org,
        when: datetime,
        *,
        steps: int,
        wrong_name: str = "",
        merge_field: str = "",
        company_field: str = "",
    ) -> None:
        """A cold pitch and its automated follow-ups ("Re:", "bumping this", "closing the loop")."""
        rng = self.rng
        g = org.gkind
        assert g is not None
        p = rng.choice(org.people)
        b = self.buyer
        first = wrong_name or merge_field or b.first_name
        company = company_field or b.company
        partner = rng.choice(self.partners).name if self.partners else "your current vendor"
        pain = rng.choice(g.pains)
        subject = self._pick(
            (
                "Quick question, {f}",
                "{co} + {v}",
                "Idea for {co}'s procurement team",
                "15 minutes next week?",
                "Are you the right person for {p}?",
                "Re: {p}",
                "{f}, {p}?",
                "Helping IT leaders with {p}",
                "{o} for {co}",
                "Reducing costs at {co}",
            ),
            f=first, co=company, v=org.name, p=pain, o=g.offer,
        )  # fmt: skip
        greet = rng.choice((f"Hi {first},", f"Hello {first},", f"{first},", f"Hey {first},"))
        hook = self._pick(
            (
                "I noticed {co} has been growing fast, and teams at that stage usually run into "
                "{p}.",
                "Most {ind} companies I speak with tell me that dealing with {p} is at the top "
                "of their list.",
                "I'll keep this short: we help IT and procurement leaders deal with {p}.",
                "I saw your post about vendor consolidation and thought this might be relevant.",
                "Reaching out because {co} came up in our research on {p}.",
                "With budgets for next year being finalised, {p} is probably on your mind.",
            ),
            co=company, p=pain, ind=self.industry,
        )  # fmt: skip
        value = self._pick(
            (
                "{v} is a {o}: {val}.",
                "With our {o}, {val}.",
                "The short version: {val}.",
                "What makes {v} different: {val}.",
                "We built {v} for teams like yours - {val}.",
            ),
            v=org.name, o=g.offer, val=rng.choice(g.values),
        )  # fmt: skip
        proof = self._pick(
            (
                "Teams already using {pt} often pair it with us.",
                "A {ind} company similar to yours cut costs by {n}% in the first six months.",
                "We work with over {k} mid-size companies, including several in {ind}.",
                "Customers switching from {pt} typically see results within a quarter.",
            ),
            pt=partner, ind=self.industry, n=rng.randint(12, 38), k=rng.choice((300, 500, 1200)),
        )  # fmt: skip
        cta = rng.choice(
            (
                "Would you be open to a 15-minute call next Tuesday or Wednesday?",
                "Worth a quick chat?",
                "Can I send over a 2-minute video showing how it works?",
                "Are you free for a short demo this week?",
                "If this isn't a priority, who on your team would be the best person to talk to?",
                "Would a meeting to review your pricing make sense?",
            )
        )
        blocks = [hook, value, proof, cta]
        if company_field:
            blocks.insert(1, f"We'd love to show {company_field} how much time this saves.")
        sig = self._signature(org, p)
        opt_out = rng.choice(
            (
                "",
                "P.S. If this isn't relevant, just reply 'no' and I won't reach out again.",
                "If you'd rather not hear from me, let me know and I'll stop.",
                f"Unsubscribe: https://{org.domain}/optout",
            )
        )
        text = self._prose([greet, *blocks, self._closing() + "\n" + sig], org.wrap)
        if opt_out:
            text += "\n\n" + opt_out
        body: _Part = _text_part(text)
        if rng.random() < 0.35:
            html = (
                '<div dir="ltr">' + _html_paragraphs(text.replace(_NB, " ")) + "</div>\n"
                f'<img src="https://t.{org.domain}/open/{self._hex(12)}.png" width="1" height="1">'
            )
            body = _Part(
                "multipart/alternative", children=[_text_part(text), _text_part(html, "html")]
            )
        facts: dict[str, object] = {"product": g.offer, "step": 1}
        if wrong_name:
            facts["wrong_name"] = wrong_name
        if merge_field:
            facts["merge_field"] = merge_field
        if company_field:
            facts["merge_field"] = company_field
        thread = f"pitch:{org.name}:{self._hex(6)}"
        mid = self._emit(
            when=when, kind="cold_pitch", org=org, sender=(p.name, p.address), subject=subject,
            body=body, facts=facts, thread=thread, platform=rng.choice(("gmail", "outlook", "own")),
        )  # fmt: skip
        refs = [mid]
        last = when
        for step in range(2, steps + 1):
            last = self._later(last, org.tz, (2, 6))
            if last >= self.end:
                break
            text2 = self._pick(
                (
                    "Hi {f}, just bumping this to the top of your inbox.",
                    "{f}, following up on my note below - any interest?",
                    "Hi {f}, I know things get busy. Is {p} something you're looking at this "
                    "quarter?",
                    "Hi {f}, I haven't heard back, so I'll assume the timing isn't right. Should "
                    "I close your file?",
                    "Circling back, {f}. Happy to send a short summary instead of a call.",
                ),
                f=first, p=pain,
            )  # fmt: skip
            old = "\n".join("> " + line for line in text.replace(_NB, " ").split("\n")[:12])
            text2 += (
                f"\n\n{p.first}\n\nOn {self._date_text(None, when.date())}, {p.name} wrote:\n{old}"
            )
            mid = self._emit(
                when=last, kind="cold_pitch", org=org, sender=(p.name, p.address),
                subject="Re: " + subject if not subject.startswith("Re:") else subject,
                body=_text_part(text2), thread=thread, in_reply_to=refs[-1], references=list(refs),
                facts={**facts, "step": step},
            )  # fmt: skip
            refs.append(mid)

    def receipt(self, org: _Org, when: datetime) -> None:
        """A one-off purchase from a vendor the buyer does not work with, via the platform."""
        rng = self.rng
        g = org.gkind
        assert g is not None
        name, city = rng.choice(_EVENTS)
        item = rng.choice(
            (
                f"Registration: {name} ({city})",
                f"{org.name} report: {rng.choice(g.titles)}",
                f"{org.name} starter plan, 1 month",
            )
        )
        amount = float(rng.choice((49, 99, 149, 295, 495, 895)))
        no = f"R-{rng.randint(100000, 999999)}"
        amt = _money(amount, "usd_sym")
        subject = self._pick(
            ("Your receipt from {v} [{no}]", "Receipt {no} - {v}", "Payment confirmation: {i}"),
            v=org.name, no=no, i=item,
        )  # fmt: skip
        blocks = [
            self._pick(
                (
                    "Thanks for your purchase from {v}. Amount paid: {a}.",
                    "This is your receipt for {i}. Total charged: {a}.",
                ),
                v=org.name, i=item, a=amt,
            ),
            f"Receipt number: {no}\nItem: {item}\nAmount: {amt}\nPaid with: card ending "
            f"{rng.randint(1000, 9999)}",
            f"Questions? Contact {org.name} at billing@{org.domain}.",
        ]  # fmt: skip
        self._emit(
            when=when, kind="receipt", org=org, sender=(f"{org.name} via {_PLATFORM_NAME}",
            _PLATFORM_ADDRESS), subject=subject, body=self._system_mail(org, blocks),
            system=True, reply_to=(org.name, f"billing@{org.domain}"),
            facts={"amount": amount, "currency": "USD", "invoice_no": no},
        )  # fmt: skip

    def marketing(self, org: _Org, when: datetime) -> None:
        rng = self.rng
        g = org.gkind
        assert g is not None
        subject = self._pick(
            (
                "New: {v} {n}.0 is here",
                "{y} benchmark report: {t}",
                "Case study: {t}",
                "Limited offer: 3 months free on annual plans",
                "{pct}% off for new customers this month",
                "Free guide: {t}",
            ),
            v=org.name, n=rng.randint(2, 9), y=when.year + 1, t=rng.choice(g.titles),
            pct=rng.choice((20, 25, 30, 40)),
        )  # fmt: skip
        host = org.bulk_host
        inner = (
            f"<h1>{escape(subject)}</h1>\n<p>{escape(rng.choice(g.values).capitalize())}.</p>\n"
            f'<img src="https://{host}/img/{self._hex(8)}.png" alt="" width="560">\n'
            f'<p><a class="btn" href="https://{host}/c/{self._hex(10)}">'
            + escape(
                rng.choice(("Get the report", "Start free trial", "Book a demo", "Learn more"))
            )
            + "</a></p>"
        )
        footer = (
            f'<a href="https://{host}/u/{self._hex(10)}">Unsubscribe</a> from {escape(org.name)}'
        )
        self._emit(
            when=when, kind="marketing", org=org, sender=org.systems["news"], subject=subject,
            body=_text_part(self._html_shell(org, inner, footer=footer), "html"), bulk=True,
            facts={"product": g.offer},
        )  # fmt: skip

    # -- colleagues and personal mail ----------------------------------------------------------

    def colleague_mail(self, when: datetime, topic: str) -> None:
        rng = self.rng
        c = self.colleagues
        partners = self.partners or self.generics
        pt = rng.choice(partners)
        b = self.buyer
        q = (when.month - 1) // 3 + 1
        to: list[tuple[str, str]] = [(b.name, b.address)]
        cc: list[tuple[str, str]] = []
        sender = c["cfo"]
        archive_p = 0.3
        in_reply_to, refs = "", []
        if topic == "budget_review":
            sender = rng.choice((c["cfo"], c["controller"], c["fpa"]))
            amount = f"${rng.randint(120, 900)}k"
            subject = self._pick(
                (
                    "FY{y} IT budget - first draft",
                    "Q{q} budget review: IT & procurement",
                    "Budget variance - {v} spend",
                    "Budget review prep for Thursday",
                    "Re: Vendor spend forecast",
                ),
                y=when.year + 1, q=q, v=pt.name,
            )  # fmt: skip
            blocks = [
                self._pick(
                    (
                        "Attached is the first draft of the FY{y} IT budget. Vendor spend is up "
                        "{n}% year over year, mostly {v}.",
                        "Ahead of Thursday's review: we're {a} over plan on vendor services this "
                        "quarter. Can you walk us through the {v} line?",
                        "Can you send me your forecast for the {v} contract and any renewals "
                        "coming up in Q{q2}?",
                    ),
                    y=when.year + 1,
                    n=rng.randint(4, 18),
                    v=pt.name,
                    a=amount,
                    q2=q % 4 + 1,
                ),
                rng.choice(
                    (
                        "I need the numbers by Friday for the exec pack.",
                        "Let's go through the invoices and the pricing changes together.",
                        "No need for detail, a one-pager is fine.",
                    )
                ),
            ]
            cc = (
                [(c["controller"].name, c["controller"].address)]
                if sender is not c["controller"]
                else []
            )
            archive_p = 0.6
        elif topic == "meeting_notes":
            sender = rng.choice((c["analyst"], c["itops"], c["assistant"], c["cio"]))
            subject = self._pick(
                (
                    "Notes: vendor steering committee {d}",
                    "Minutes - IT leadership sync",
                    "Action items from today's ops review",
                    "Re: Notes from the {v} meeting",
                ),
                d=when.strftime("%m/%d"), v=pt.name,
            )  # fmt: skip
            items = rng.sample(
                [
                    f"{b.first_name} to follow up with {pt.name} on pricing for next year",
                    "Finance to confirm the budget envelope for renewals",
                    f"{c['itops'].first} to collect usage data for the {pt.name} review",
                    "Legal to review the new data processing terms",
                    "Decide on the laptop refresh vendor shortlist by month end",
                    "Schedule the QBRs with the top five vendors",
                    "Review open support tickets older than 30 days",
                ],
                4,
            )
            blocks = [
                rng.choice(
                    ("Notes from today below.", "Summary and action items:", "Quick recap:")
                ),
                "\n".join(f"- {i}" for i in items),
                rng.choice(("Shout if I missed anything.", "Next meeting in two weeks.", "")),
            ]
            to = [("IT Leadership", f"it-leadership@{b.domain}")] if rng.random() < 0.5 else to
            archive_p = 0.7
        elif topic == "approval":
            po = self._po()
            amt = _money(round(rng.uniform(1500, 95000), 2), "usd_sym")
            if rng.random() < 0.6:
                sender = _Person("Procurement System", "", f"noreply-p2p@{b.domain}", "", "", "")
                subject = self._pick(
                    (
                        "Approval required: {po} - {v} - {a}",
                        "Requisition REQ-{n} is awaiting your approval",
                        "Approved: {po}",
                        "Reminder: 2 items awaiting your approval",
                    ),
                    po=po, v=pt.name, a=amt, n=rng.randint(100000, 999999),
                )  # fmt: skip
                blocks = [
                    f"Requester: {c['analyst'].name}\nSupplier: {pt.name}\nAmount: {amt}\n"
                    f"Cost center: IT-{rng.randint(100, 999)}",
                    "Review and approve: "
                    f"https://p2p.{b.domain}/approvals/{rng.randint(10000, 99999)}",
                ]
                body = _text_part("\n\n".join(blocks))
                self._colleague_emit(
                    when, sender, subject, body, to, cc, "approval", 0.6, system=True
                )
                return
            sender = rng.choice((c["analyst"], c["itops"], c["security"]))
            subject = self._pick(
                (
                    "Can you approve the {v} PO?",
                    "Approval for {v} renewal",
                    "Need your sign-off: {a} for {v}",
                ),
                v=pt.name, a=amt,
            )  # fmt: skip
            blocks = [
                self._pick(
                    (
                        "Could you approve {po} for {v} ({a})? It's in your queue.",
                        "The {v} quote came in at {a}. OK to proceed?",
                    ),
                    po=po,
                    v=pt.name,
                    a=amt,
                ),
                "Thanks!",
            ]
            archive_p = 0.6
        elif topic == "lunch":
            sender = rng.choice(list(c.values()))
            place = rng.choice(("the Thai place", "Luigi's", "the food trucks", "the cafeteria"))
            subject = self._pick(
                (
                    "Lunch {d}?",
                    "Team lunch on Friday - {p}",
                    "Coffee?",
                    "Cake in the kitchen at 3",
                    "Re: lunch",
                ),
                d=rng.choice(("Thursday", "tomorrow", "today")), p=place,
            )  # fmt: skip
            blocks = [
                rng.choice(
                    (
                        f"Anyone up for {place} around 12:30?",
                        "It's Priya's birthday - cake in the kitchen at 3pm!",
                        "Coffee in 10? I need a break from spreadsheets.",
                        f"Booking {place} for Friday, let me know if you're in.",
                    )
                )
            ]
            archive_p = 0.1
        elif topic == "hr":
            sender = rng.choice((c["hr"], _Person("People Team", "", f"hr@{b.domain}", "", "", "")))
            subject = self._pick(
                (
                    "Reminder: open enrollment closes {d}",
                    "Performance review cycle kicks off next week",
                    "Holiday schedule {y}",
                    "New hire starting Monday: {n}",
                    "Updated travel & expense policy",
                    "Mandatory training due by {d}",
                ),
                d=_fmt_date(when.date() + timedelta(days=14), "long_us"), y=when.year + 1,
                n=self._new_name()[0],
            )  # fmt: skip
            blocks = [
                rng.choice(
                    (
                        "Please make your benefit elections in the HR portal before the deadline.",
                        "Self-reviews are due in two weeks. Managers will get a separate note.",
                        "Please help make them feel welcome!",
                        "The updated policy is on the intranet. Main change: per diems.",
                        "Completion is tracked; reminders will go to managers after the due date.",
                    )
                )
            ]
            to = [("All Staff", f"all-staff@{b.domain}")] if rng.random() < 0.6 else to
            archive_p = 0.4
        elif topic == "vendor_forward":
            sender = rng.choice((c["itops"], c["analyst"], c["controller"], c["security"]))
            subject = self._pick(
                (
                    "Fwd: {v} invoice",
                    "FW: {v} price increase",
                    "Have you heard back from {v}?",
                    "Fwd: Renewal quote from {v}",
                    "{v} outage this morning",
                ),
                v=pt.name,
            )  # fmt: skip
            blocks = [
                self._pick(
                    (
                        "See below - this looks higher than last month. Can you check with {v}?",
                        "FYI. Do we want to push back on this before the renewal?",
                        "Did {v} ever send the root cause for the outage?",
                        "Forwarding in case you didn't get it. Their account manager changed.",
                    ),
                    v=pt.name,
                ),
                f"---------- Forwarded message ---------\nFrom: {pt.name} <info@{pt.domain}>\n"
                f"Subject: {pt.name} update\n\nDear customer, please review the attached pricing "
                "and invoice details for your account.",
            ]
            archive_p = 0.4
        elif topic == "contract_review":
            sender = c["legal"]
            other = rng.choice(self.generics).name if self.generics else pt.name
            subject = self._pick(
                (
                    "Re: {v} MSA redlines",
                    "NDA for {o}",
                    "Signed DPA - {v}",
                    "Liability cap in the {v} renewal",
                ),
                v=pt.name, o=other,
            )  # fmt: skip
            blocks = [
                self._pick(
                    (
                        "I've gone through the redlines from {v}. Two open points: liability cap "
                        "and auto-renewal notice period.",
                        "{o} sent an NDA before their demo. It's our standard paper, I've signed "
                        "it.",
                        "Countersigned DPA attached for your records.",
                    ),
                    v=pt.name,
                    o=other,
                ),
                "Let me know if you want to discuss.",
            ]
            if subject.startswith("Re:"):
                asked = when - timedelta(hours=rng.uniform(3, 48))
                in_reply_to = self._buyer_msgid(asked)
                refs = [in_reply_to]
            archive_p = 0.7
        else:  # it_ops
            sender = rng.choice((c["itops"], c["security"], c["cio"]))
            subject = self._pick(
                (
                    "Change window this Saturday",
                    "Laptop refresh rollout - status",
                    "Phishing simulation results",
                    "Re: Outage review",
                    "Server room access list",
                ),
            )
            blocks = [
                rng.choice(
                    (
                        "We'll patch the core switches on Saturday night. Expect a short outage.",
                        "Wave 2 of the laptop refresh is done; 140 devices deployed.",
                        "Click rate on the last phishing test was 6%, down from 11%.",
                        "Can you confirm which contractors still need access?",
                    )
                )
            ]
            archive_p = 0.5
        first = b.first_name if rng.random() < 0.8 else "all"
        text = "\n\n".join(
            [rng.choice((f"Hi {first},", f"{first},", f"Hey {first},", "Hi,")), *blocks]
        ).rstrip()
        text += "\n\n" + rng.choice(("Thanks", "Cheers", "Best", "Thx", "")) + f"\n{sender.first}"
        if sender.title and rng.random() < 0.6:
            text += f"\n\n{sender.name}\n{sender.title} | {b.company}"
        self._colleague_emit(
            when, sender, subject, _text_part(text), to, cc, topic, archive_p,
            in_reply_to=in_reply_to, references=refs,
        )  # fmt: skip

    def _colleague_emit(
        self,
        when: datetime,
        sender: _Person,
        subject: str,
        body: _Part,
        to: Sequence[tuple[str, str]],
        cc: Sequence[tuple[str, str]],
        topic: str,
        archive_p: float,
        *,
        system: bool = False,
        in_reply_to: str = "",
        references: Sequence[str] = (),
    ) -> None:
        if self.rng.random() < 0.25 and not system:
            body = _Part(
                "multipart/alternative",
                children=[
                    body,
                    _text_part(f"<html><body>{_html_paragraphs(body.text)}</body></html>", "html"),
                ],
            )
        self._emit(
            when=when, kind="colleague", org=None, sender=(sender.name, sender.address),
            subject=subject, body=body, to=to, cc=cc, facts={"topic": topic}, system=system,
            archive=self.rng.random() < archive_p, tz=self.buyer_tz, platform="outlook",
            in_reply_to=in_reply_to, references=references,
        )  # fmt: skip

    def personal_mail(self, when: datetime) -> None:
        rng = self.rng
        f = rng.choice(self.friends)
        b = self.buyer
        topic, subject, text = rng.choice(
            (
                ("plans", "Dinner Saturday?", "Are you two free Saturday? Thinking 7pm at ours."),
                ("photos", "Photos from the lake", "Finally uploaded them - the sunset ones!"),
                ("family", "Mom's birthday", "Can you pick up the cake? I'll get flowers."),
                ("kids", "Soccer carpool this week", "I can drive Tuesday, can you do Thursday?"),
                (
                    "club",
                    "Book club - next pick",
                    "Voting closes Sunday. I'm rooting for the mystery.",
                ),
                ("plans", "Re: weekend plans", "Hike is on if it doesn't rain. Bring snacks :)"),
                ("travel", "Flights for the reunion", "Prices just dropped, booking tonight?"),
            )
        )
        greet = rng.choice((f"Hi {b.first_name}!", f"Hey {b.first_name.lower()},", "Hi!", ""))
        body_text = "\n\n".join(
            x for x in (greet, text, rng.choice(("xx", f"- {f.first}", f.first))) if x
        )
        self._emit(
            when=when, kind="personal", org=None, sender=(f.name, f.address), subject=subject,
            body=_text_part(body_text), facts={"topic": topic}, tz=self.buyer_tz,
            archive=rng.random() < 0.4, platform="gmail",
        )  # fmt: skip

    # -- schedule ---------------------------------------------------------------------------------

    def run(self) -> SampleMailbox:
        self._schedule_partners()
        self._schedule_generics()
        self._schedule_internal()
        self._specials()
        return self._finish()

    def _week_bounds(self, week: int) -> tuple[datetime, datetime]:
        lo = self.start + timedelta(days=7 * week)
        return lo, min(lo + timedelta(days=7), self.end)

    def _schedule_partners(self) -> None:
        rng = self.rng
        self.jump_org = self._pick_org(("cloud", "staffing", "telecom", "security"), invoicing=True)
        for org in self.partners:
            self._monthly_invoices(org)
            assert org.pkind is not None
            ships = org.pkind.ships
            for week in range(self._week_count()):
                boost = self._boost(week)
                lo, hi = self._week_bounds(week)
                for _ in range(_poisson(rng, (0.4 if ships else 0.14) * boost)):
                    self.order_chain(org, self._when(lo, hi, org.tz))
                for _ in range(_poisson(rng, 0.15 * boost)):
                    start = self._when(lo, hi, org.tz)
                    # Background tickets all get an answer before `end` (updates are capped
                    # there), so the planted one is the only open issue without a follow-up.
                    if start > self.end - timedelta(days=1):
                        start = self._when(self.split, self.end - timedelta(days=1), org.tz)
                    self.support_chain(org, start, updates=rng.choice((1, 1, 2)))
                if rng.random() < 0.03 * boost and week < self.weeks:
                    self._background_renewal(org, self._when(lo, hi, org.tz))
                for _ in range(_poisson(rng, 0.36 * boost)):
                    self.account_mail(org, self._when(lo, hi, org.tz))
                if not ships and rng.random() < 0.07 * boost:
                    self.maintenance(org, self._when(lo, hi, org.tz))
                if org.cadence and (week + org.phase) % org.cadence == 0:
                    self.newsletter(org, self._when(lo, hi, org.tz, hours=(6, 11)))
                if rng.random() < 0.03 * boost:
                    self.webinar(org, self._when(lo, hi, org.tz))
            # Every named contact has written at least once before the new week, so each
            # partner really has its 2-4 people.
            for person in org.people:
                if person.address not in self.wrote:
                    self.contact_note(org, person, self._when(self.start, self.split, org.tz))

    def _background_renewal(self, org: _Org, when: datetime) -> None:
        # Renewals that came and went in the history; only the planted one is still ahead.
        renew = when.date() + timedelta(days=self.rng.randint(30, 60))
        if renew < self.split.date():
            self.renewal(org, when, renew)

    def _monthly_invoices(self, org: _Org) -> None:
        rng = self.rng
        if not org.invoice_day:
            return
        assert org.pkind is not None
        whole = org.pkind.whole
        jump_at: datetime | None = None
        limit = self.end
        if org is self.jump_org:
            # The jump invoice goes out on a working day of the new week; the partner's billing
            # day follows from it, so the earlier months keep a regular monthly rhythm.
            jump_at = self._when(self.split + timedelta(hours=12), self.end - timedelta(days=1),
                                 org.tz, hours=(7, 18))  # fmt: skip
            org.invoice_day = min(jump_at.astimezone(org.tz).day, 28)
            limit = self.split
        history: list[float] = []
        month = date(self.start.year, self.start.month, 1)
        while month <= self.end.date():
            day = date(month.year, month.month, min(org.invoice_day, 28))
            lo = datetime.combine(day, time(7), org.tz).astimezone(UTC)
            when = self._when(lo, lo + timedelta(hours=11), org.tz, weekends=True)
            if day.weekday() >= 5:  # billing runs on weekends go out on Monday
                when += timedelta(days=7 - day.weekday())
            period = (month - timedelta(days=1)).replace(day=1)
            if self.start <= when < limit:
                amount = org.base_amount * rng.uniform(0.87, 1.13)
                amount = float(round(amount)) if whole else round(amount, 2)
                self.invoice(org, when, amount, period)
                history.append(amount)
            month = (month + timedelta(days=32)).replace(day=1)
        if jump_at is None:
            return
        prev = history[-3:] or [org.base_amount]
        avg = sum(prev) / len(prev)
        amount = avg * rng.uniform(1.62, 2.1)
        amount = float(round(amount)) if whole else round(amount, 2)
        note = ""
        if rng.random() < 0.6:
            note = rng.choice(
                (
                    "This invoice includes usage above your committed amount.",
                    "Note: this period includes one-time onboarding and overage charges.",
                    "Charges include additional units added during the period.",
                )
            )
        local = jump_at.astimezone(org.tz).date()
        period = (local.replace(day=1) - timedelta(days=1)).replace(day=1)
        extra = {"jump": True, "previous_average": round(avg, 2)}
        self.invoice(org, jump_at, amount, period, note, extra)

    def _pick_org(
        self, prefs: Sequence[str], *, invoicing: bool = False, ships: bool = False
    ) -> _Org:
        """A partner for a planted event: preferred kinds first, spreading events over partners."""
        used = self.used_orgs
        candidates = [
            o
            for o in self.partners
            if (not invoicing or o.invoice_day) and (not ships or (o.pkind and o.pkind.ships))
        ] or list(self.partners)
        ranked = sorted(
            candidates,
            key=lambda o: (
                used.get(o.name, 0),
                prefs.index(o.pkind.key) if o.pkind and o.pkind.key in prefs else len(prefs),
            ),
        )
        org = ranked[0]
        used[org.name] = used.get(org.name, 0) + 1
        return org

    def _schedule_generics(self) -> None:
        rng = self.rng
        for org in self.generics:
            before = len(self.drafts)
            self._schedule_generic(org)
            if len(self.drafts) == before:
                # Every vendor writes at least once, so `generic_vendors` is what the buyer sees.
                lo, hi = self._week_bounds(self.weeks if org.new_this_week else 0)
                hi = self.split if not org.new_this_week else hi
                self.pitch_sequence(org, self._when(lo, hi, org.tz), steps=rng.randint(1, 3))

    def _schedule_generic(self, org: _Org) -> None:
        rng = self.rng
        first_week = self.weeks if org.new_this_week else 0
        for week in range(first_week, self._week_count()):
            boost = self._boost(week)
            lo, hi = self._week_bounds(week)
            if org.new_this_week:
                # A newcomer announces itself once, with a pitch or a newsletter.
                if rng.random() < 0.6:
                    self.pitch_sequence(org, self._when(lo, hi, org.tz), steps=1)
                else:
                    self.newsletter(org, self._when(lo, hi, org.tz, hours=(6, 11)))
                continue
            if org.cadence and (week + org.phase) % org.cadence == 0 and rng.random() < 0.85:
                self.newsletter(org, self._when(lo, hi, org.tz, hours=(6, 11)))
            if rng.random() < 0.05 * boost:
                self.pitch_sequence(org, self._when(lo, hi, org.tz), steps=rng.randint(1, 4))
            if rng.random() < 0.04 * boost:
                self.webinar(org, self._when(lo, hi, org.tz))
            if rng.random() < 0.02 * boost:
                self.webinar(org, self._when(lo, hi, org.tz), event=True)
            if rng.random() < 0.04 * boost:
                self.marketing(org, self._when(lo, hi, org.tz, hours=(6, 12)))
            if rng.random() < 0.012 * boost:
                self.receipt(org, self._when(lo, hi, org.tz))

    def _schedule_internal(self) -> None:
        rng = self.rng
        topics = (
            ("budget_review", 0.9), ("meeting_notes", 1.4), ("approval", 1.6), ("lunch", 1.1),
            ("hr", 0.7), ("vendor_forward", 0.9), ("contract_review", 0.6), ("it_ops", 0.9),
        )  # fmt: skip
        for week in range(self._week_count()):
            boost = self._boost(week)
            lo, hi = self._week_bounds(week)
            for topic, rate in topics:
                for _ in range(_poisson(rng, rate * boost)):
                    self.colleague_mail(self._when(lo, hi, self.buyer_tz), topic)
            for _ in range(_poisson(rng, 0.9 * boost)):
                self.personal_mail(self._when(lo, hi, self.buyer_tz, hours=(7, 22), weekends=True))

    def _specials(self) -> None:
        """The events the digest must find, planted at known times relative to `end`."""
        rng = self.rng
        new_lo, end = self.split, self.end
        today = end.date()

        def in_new(org: _Org, lo_days: float = 0.0, hi_days: float = 7.0) -> datetime:
            return self._when(
                new_lo + timedelta(days=lo_days), new_lo + timedelta(days=hi_days), org.tz
            )

        def in_history(org: _Org, days_before_split: tuple[float, float]) -> datetime:
            lo = max(self.start, new_lo - timedelta(days=days_before_split[1]))
            hi = max(lo + timedelta(hours=12), new_lo - timedelta(days=days_before_split[0]))
            return self._when(lo, min(hi, new_lo), org.tz)

        if self.partners:
            # A renewal coming up within 60 days of `end`, announced this week.
            org = self._pick_org(("saas", "security", "erp", "backup", "datacenter"))
            self.renewal(org, in_new(org), today + timedelta(days=rng.randint(21, 55)))
            # An earlier renewal notice in history (its date has passed or is far out).
            org2 = self._pick_org(("telecom", "print", "cloud"))
            self.renewal(
                org2, in_history(org2, (40, 120)), today + timedelta(days=rng.randint(75, 140))
            )
            # An outage and its follow-up this week; another pair months ago.
            org = self._pick_org(("cloud", "telecom", "saas", "datacenter"))
            when = in_new(org, 0.5, 5)
            self.outage(org, when, follow_up=when + timedelta(hours=rng.uniform(1.5, 9)))
            org2 = self._pick_org(("datacenter", "security", "cloud"))
            when = in_history(org2, (30, 100))
            self.outage(org2, when, follow_up=when + timedelta(hours=rng.uniform(1, 6)))
            # Bad news this week: a termination and a price increase; an older increase and EOL.
            org = self._pick_org(("print", "logistics", "office", "hardware"))
            self.termination(org, in_new(org), today + timedelta(days=rng.randint(60, 120)))
            org = self._pick_org(("office", "telecom", "erp", "hardware"))
            self.price_increase(org, in_new(org), date(today.year + 1, 1, 1))
            org2 = self._pick_org(("cloud", "saas", "logistics"))
            self.price_increase(org2, in_history(org2, (50, 150)), today - timedelta(days=20))
            org = self._pick_org(("backup", "hardware", "print"))
            self.end_of_life(org, in_history(org, (20, 80)), today + timedelta(days=200))
            # An open support issue this week that nobody has followed up on.
            org = self._pick_org(("security", "backup", "saas", "cloud"))
            self.support_chain(org, in_new(org, 1, 4), updates=0)
            # A shipment two weeks ago whose delivery was never confirmed.
            org = self._pick_org(("hardware", "office", "backup", "telecom"), ships=True)
            if org.pkind and org.pkind.ships:
                self.order_chain(org, in_history(org, (7, 12)), deliver=False)
            # Every kind shows up this week, and two partners have someone new writing.
            for org in rng.sample(self.partners, min(2, len(self.partners))):
                self.introduction(org, in_new(org))
            org = self._pick_org(("hardware", "office", "backup"), ships=True)
            if org.pkind and org.pkind.ships:
                self.order_chain(org, in_new(org, 0, 2))
            org = self._pick_org(("telecom", "saas", "cloud"))
            when = in_new(org, 0, 3)
            self.support_chain(org, when, updates=1)
            self.account_mail(org, in_new(org))
            self.maintenance(org, in_new(org))
        if self.generics:
            # Cold pitches that got the buyer's name wrong or left a merge field in, this week.
            # Not a nickname of the buyer's name either ("Tom" for "Tomás" would be fine).
            names = [n for n in _WRONG_NAMES if n[:3] != self.buyer.first_name[:3]]
            pitchers = [o for o in self.generics if not o.new_this_week] or self.generics
            order = rng.sample(pitchers, len(pitchers))
            picks = [order[i % len(order)] for i in range(8)]  # reused when there are few
            self.pitch_sequence(picks[0], in_new(picks[0]), steps=1, wrong_name=rng.choice(names))
            self.pitch_sequence(picks[1], in_new(picks[1]), steps=1, merge_field="{FirstName}")
            self.pitch_sequence(picks[2], in_new(picks[2]), steps=1, company_field="[Company]")
            # And older ones in history (with other spellings of the merge fields).
            if self.weeks >= 2:
                self.pitch_sequence(picks[3], in_history(picks[3], (5, 60)), steps=2,
                                    wrong_name=rng.choice(names))  # fmt: skip
                self.pitch_sequence(picks[4], in_history(picks[4], (5, 60)), steps=1,
                                    merge_field=rng.choice(_MERGE_FIELDS[1:]))  # fmt: skip
                self.pitch_sequence(picks[5], in_history(picks[5], (5, 90)), steps=1,
                                    company_field=rng.choice(_COMPANY_FIELDS[1:]))  # fmt: skip
            self.webinar(picks[5], in_new(picks[5]))
            self.webinar(picks[6], in_new(picks[6]), event=True)
            self.newsletter(picks[7], in_new(picks[7], 0, 3))
            self.marketing(picks[6], in_new(picks[6]))
            self.receipt(picks[5], in_new(picks[5]))
            self.pitch_sequence(picks[7], in_new(picks[7]), steps=2)
        self.colleague_mail(self._when(new_lo, end, self.buyer_tz), "budget_review")
        self.personal_mail(self._when(new_lo, end, self.buyer_tz, hours=(7, 22), weekends=True))

    def _finish(self) -> SampleMailbox:
        drafts = sorted(self.drafts, key=lambda d: d.when)
        # Ground truth for "no follow-up": a later message in the same thread exists or not.
        last_in_thread: dict[str, datetime] = {}
        for d in drafts:
            if d.thread:
                last_in_thread[d.thread] = d.when
        history: list[SampleMessage] = []
        new_week: list[SampleMessage] = []
        for d in drafts:
            facts = dict(d.facts)
            if "follow_up" in facts:
                facts["follow_up"] = last_in_thread.get(d.thread, d.when) > d.when
            in_history = d.when < self.split
            folder = d.folder or (ARCHIVE if d.archive and in_history else INBOX)
            msg = SampleMessage(
                folder=folder,
                data=d.data,
                date=d.when,
                kind=d.kind,
                vendor=d.vendor,
                facts=MappingProxyType(facts),
            )
            (history if in_history else new_week).append(msg)
        return SampleMailbox(
            buyer=self.buyer,
            partners=tuple(o.name for o in self.partners),
            history=tuple(history),
            new_week=tuple(new_week),
            sent=self._sent(drafts),
        )

    # -- the buyer's own mail ------------------------------------------------------------------

    _REPLY_OPENERS = (
        "Thanks, {f}.", "Thanks {f} - noted.", "Hi {f}, thanks for this.", "{f}, thank you.",
        "Got it, thanks.", "Hi {f},", "Thanks for the quick turnaround, {f}.",
    )  # fmt: skip
    _REPLY_BODIES = (
        "Looks good; please go ahead.",
        "Can you send the details over by the end of the week?",
        "Let's discuss on Thursday's call.",
        "I have looped in our finance team for the PO.",
        "Please hold off until I confirm with the team.",
        "Could you double-check the quantities against our last order?",
        "That works for us.",
        "Please keep me posted on the next steps.",
    )

    def _sent(self, drafts: Sequence[_Draft]) -> tuple[SampleMessage, ...]:
        """The buyer's replies to some partner mail (later mail in a thread often goes
        unanswered until the buyer catches up), and, in the last month, several messages to one
        generic vendor the buyer has started working with: a partner they may want to promote."""
        rng = random.Random(f"{self.seed}-sent")
        out: list[tuple[datetime, bytes]] = []
        for d in drafts:
            if not d.folder.startswith(VENDOR_PREFIX) or d.folder == GENERIC_FOLDER:
                continue
            head = d.data.split(b"\r\n\r\n", 1)[0].decode("utf-8", "replace")
            if re.search(r"^(List-Id|Auto-Submitted|Precedence):", head, re.M | re.I):
                continue
            head = re.sub(r"\n[ \t]+", " ", head.replace("\r\n", "\n"))  # unfold
            sender = re.search(r"^From: (.*)$", head, re.M)
            mid = re.search(r"^Message-ID: (\S+)", head, re.M)
            subject = re.search(r"^Subject: (.*)$", head, re.M)
            if not (sender and mid and subject) or "noreply" in sender.group(1):
                continue
            when = d.when + timedelta(hours=rng.uniform(1, 30))
            if rng.random() > 0.6 or when >= self.end:
                continue
            reply = self._reply(rng, when, sender.group(1), mid.group(1), subject.group(1))
            out.append((when, reply))
        pitchers = [o for o in self.generics if o.people and not o.new_this_week]
        if pitchers:
            org = rng.choice(pitchers)
            person = org.people[0]
            for days in sorted(rng.sample(range(2, 26), 3)):
                when = self.end - timedelta(days=days, hours=rng.uniform(0, 8))
                to = formataddr((person.name, person.address))
                out.append((when, self._reply(rng, when, to, "", f"{org.name} pilot")))
        out.sort(key=lambda item: item[0])
        return tuple(
            SampleMessage(folder=SENT, data=data, date=when, kind="sent", vendor="")
            for when, data in out
        )

    def _reply(
        self, rng: random.Random, when: datetime, to: str, parent: str, subject: str
    ) -> bytes:
        """One message from the buyer to `to` (a From/To header value, possibly encoded),
        answering the message `parent` ("" for a new conversation)."""
        when = when.astimezone(UTC).replace(microsecond=0)
        name = str(make_header(decode_header(to)))
        first = (parseaddr(name)[0].split() or ["there"])[0]
        subject = subject if subject.lower().startswith("re:") or not parent else f"Re: {subject}"
        lines = [
            f"Date: {format_datetime(when.astimezone(self.buyer_tz))}",
            _addr_header("From", [(self.buyer.name, self.buyer.address)]),
            f"To: {to}",
            f"Subject: {subject}",
            f"Message-ID: {self._buyer_msgid(when)}",
        ]
        if parent:
            lines += [f"In-Reply-To: {parent}", f"References: {parent}"]
        body = (
            rng.choice(self._REPLY_OPENERS).format(f=first)
            + "\n\n"
            + rng.choice(self._REPLY_BODIES)
            + f"\n\n{self.buyer.first_name}\n"
        )
        lines += ["MIME-Version: 1.0", "Content-Type: text/plain; charset=utf-8",
                  "Content-Transfer-Encoding: 8bit"]  # fmt: skip
        return ("\n".join(lines) + "\n\n" + body).encode("utf-8").replace(b"\n", b"\r\n")


# -- public functions -----------------------------------------------------------------------------


def build(
    seed: int = 7,
    *,
    weeks: int = 26,
    end: datetime | None = None,
    partners: int = 9,
    generic_vendors: int = 36,
) -> SampleMailbox:
    """A sample mailbox: `weeks` weeks of filed history, then the week before `end`.

    Deterministic: the same arguments give byte-identical messages. `end` defaults to
    DEFAULT_END (2026-11-16 09:00 UTC) and must be timezone-aware.
    """
    end = DEFAULT_END if end is None else end
    if end.tzinfo is None or end.utcoffset() is None:
        raise ValueError("end must be timezone-aware, e.g. datetime(2026, 11, 16, tzinfo=UTC)")
    if weeks < 1:
        raise ValueError(f"weeks must be at least 1, not {weeks}")
    if not 1 <= partners <= len(_PARTNER_KINDS):
        raise ValueError(f"partners must be between 1 and {len(_PARTNER_KINDS)}, not {partners}")
    pool = sum(len(k.names) for k in _GENERIC_KINDS)
    if not 1 <= generic_vendors <= pool:
        raise ValueError(f"generic_vendors must be between 1 and {pool}, not {generic_vendors}")
    return _Generator(seed, weeks, end.astimezone(UTC), partners, generic_vendors).run()


def write_maildir(sample: SampleMailbox, root: Path) -> None:
    """Writes the sample as a Maildir++ tree under `root` (created if missing).

    History goes into its folders as read mail (`cur/`, flag S); the new week goes into the
    INBOX's `new/`, unread. Folder `A/B` is the directory `.A.B` with cur/new/tmp and an empty
    `maildirfolder` file. File names are deterministic and carry the exact size (`,S=`), and
    each file's mtime is the message date, as Dovecot expects. Writing the same sample twice
    rewrites the same files.
    """
    root = Path(root)
    folders = {msg.folder for msg in (*sample.history, *sample.sent)} | set(sample.folders)
    dirs: dict[str, Path] = {}
    for folder in sorted(folders):
        if folder == INBOX:
            path = root
        else:
            parts = folder.split("/")
            if any(not p or "." in p or "&" in p or not p.isascii() for p in parts):
                raise ValueError(f"folder {folder!r} cannot be written as a Maildir++ name")
            path = root / ("." + ".".join(parts))
        for sub in ("cur", "new", "tmp"):
            (path / sub).mkdir(parents=True, exist_ok=True)
        if folder != INBOX:
            (path / "maildirfolder").touch()
        dirs[folder] = path
    batches = (
        (sample.history, "cur", ":2,S"),
        (sample.sent, "cur", ":2,S"),
        (sample.new_week, "new", ""),
    )
    n = 0
    for messages, sub, info in batches:
        for msg in messages:
            n += 1
            ts = msg.date.timestamp()
            micro = round((ts % 1) * 1_000_000)
            name = f"{int(ts)}.M{micro}P{n}Q1.triage-sample,S={len(msg.data)}{info}"
            folder = msg.folder if sub == "cur" else INBOX
            path = dirs[folder] / sub / name
            path.write_bytes(msg.data)
            os.utime(path, (ts, ts))


def kinds(sample: SampleMailbox) -> Mapping[str, int]:
    """How many messages of each kind the sample has (history and new week together)."""
    counts: dict[str, int] = {}
    for msg in (*sample.history, *sample.new_week):
        counts[msg.kind] = counts.get(msg.kind, 0) + 1
    return dict(sorted(counts.items()))
