"""The official Segment Python library (PyPI segment-analytics-python) pointed at Tailor, unchanged.

Usage: segment_python.py BASE_URL RUN_ID
Batches (POST /v1/batch, write key as HTTP Basic user, gzip bodies) a visit: page, product viewed,
identify, product added, order completed, alias and a custom track. Prints a JSON summary; exits 1 if
the collector refused anything.
"""

import json
import sys

import segment.analytics as analytics

base, run = sys.argv[1], sys.argv[2]
member = f"seg-py-{run}"
anon = f"anon-{member}"
order = f"order-{member}"
errors = []

analytics.write_key = "demo"
analytics.host = base
analytics.gzip = True
analytics.max_retries = 2
analytics.on_error = lambda error, items: errors.append(str(error))

analytics.page(anonymous_id=anon, name="Two-person tent", properties={"url": "https://shop.example/p/tent-2p"})
analytics.track(
    anonymous_id=anon,
    event="Product Viewed",
    properties={"product_id": "tent-2p", "category": "camping", "price": 189.0},
)
analytics.identify(member, {"plan": "gold"}, anonymous_id=anon)
analytics.track(
    member,
    "Product Added",
    {"product_id": "tent-2p", "category": "camping", "price": 189.0, "quantity": 1},
    anonymous_id=anon,
)
analytics.track(
    member,
    "Order Completed",
    {
        "order_id": order,
        "total": 208.0,
        "currency": "EUR",
        "products": [
            {"product_id": "tent-2p", "category": "camping", "price": 189.0, "quantity": 1},
            {"product_id": "socks-wool", "category": "clothing", "price": 19.0, "quantity": 1},
        ],
    },
    anonymous_id=anon,
)
analytics.alias(anon, member)
analytics.track(member, "Newsletter Subscribed", {"list": "weekly"}, anonymous_id=anon)
analytics.flush()
analytics.shutdown()
print(json.dumps({"member": member, "order": order, "revenue": 208.0, "errors": errors}))
sys.exit(1 if errors else 0)
