"""The official Snowplow Python tracker (PyPI snowplow-tracker) pointed at Tailor, unchanged.

Usage: snowplow_python.py BASE_URL RUN_ID get|post
Sends a shop visit: page view, page ping, a structured event, an e-commerce product view and add to
cart (self-describing events with product entities, as the browser e-commerce plugin sends them) and a
purchase (POST: the legacy transaction with its items; GET: the e-commerce transaction action).
Prints a JSON summary; exits 1 if the collector refused anything.
"""

import json
import sys
from urllib.parse import urlparse

from snowplow_tracker import (
    Emitter,
    PagePing,
    PageView,
    SelfDescribing,
    SelfDescribingJson,
    StructuredEvent,
    Subject,
    Tracker,
)

base, run, method = sys.argv[1], sys.argv[2], sys.argv[3]
url = urlparse(base)
member = f"sp-py-{method}-{run}"
order = f"order-{member}"
failures = []

emitter = Emitter(
    url.hostname,
    protocol=url.scheme,
    port=url.port,
    method=method,
    batch_size=50 if method == "post" else 1,
    on_failure=lambda sent, unsent: failures.append(len(unsent)),
    max_retry_delay_seconds=1,
)
subject = Subject().set_domain_user_id(f"duid-{member}").set_domain_session_id(f"sess-{member}")
tracker = Tracker("py", emitter, subject=subject, app_id="demo")

ECOM = "iglu:com.snowplowanalytics.snowplow.ecommerce"


def product(pid, price, quantity=1, category="camping"):
    return SelfDescribingJson(
        f"{ECOM}/product/jsonschema/1-0-0",
        {"id": pid, "category": category, "price": price, "currency": "EUR", "quantity": quantity},
    )


def action(kind, entities):
    tracker.track(
        SelfDescribing(
            SelfDescribingJson(f"{ECOM}/snowplow_ecommerce_action/jsonschema/1-0-2", {"type": kind}),
            context=entities,
        )
    )


page = "https://shop.example/p/tent-2p"
tracker.track(PageView(page_url=page, page_title="Two-person tent", referrer="https://www.google.com/"))
action("product_view", [product("tent-2p", 189.0)])
tracker.track(PagePing(page_url=page))
subject.set_user_id(member)
tracker.track(StructuredEvent(category="account", action="login", label="demo", value=1))
action("add_to_cart", [product("tent-2p", 189.0)])
if method == "post":
    tracker.track_ecommerce_transaction(
        order,
        208.0,
        currency="EUR",
        items=[
            {"sku": "tent-2p", "price": 189.0, "quantity": 1, "category": "camping"},
            {"sku": "socks-wool", "price": 19.0, "quantity": 1, "category": "clothing"},
        ],
    )
else:
    action(
        "transaction",
        [
            SelfDescribingJson(
                f"{ECOM}/transaction/jsonschema/1-0-0",
                {"transaction_id": order, "revenue": 208.0, "currency": "EUR", "payment_method": "card"},
            ),
            product("tent-2p", 189.0),
            product("socks-wool", 19.0, category="clothing"),
        ],
    )
tracker.flush()
print(json.dumps({"member": member, "order": order, "revenue": 208.0, "failures": failures}))
sys.exit(1 if failures else 0)
