"""Every path, parameter, field name and value of the GoDataFeed Order API, in one module.

The public documentation names the resources but not all of their wire details; what is
written here is the working contract. Adapting to a change in the live API is a change here.
The client and the emulator both import these names, so they cannot drift apart.
"""

# Paths. v1 carries the token in the path, v2 in an Authorization: Bearer header.
AUTHORIZATION_PATH = "/v1/authorization"
V1_PREFIX = "/v1/{token}"
V2_PREFIX = "/v2"
ORDERS_PATH = "/orders"
ORDER_PATH = "/orders/{order_id}"
ACKNOWLEDGE_PATH = "/orders/{order_id}/acknowledge"
STATUS_PATH = "/orders/{order_id}/status"

# Query parameters.
CONSUMER_KEY_PARAM = "consumerKey"
STATUS_PARAM = "status"
MODIFIED_SINCE_PARAM = "modifiedSince"
PAGE_PARAM = "page"
PAGE_SIZE_PARAM = "pageSize"
PAGE_SIZE_MIN = 1
PAGE_SIZE_MAX = 250
PAGE_SIZE_DEFAULT = 50

# Authorization answer.
TOKEN_FIELD = "token"
EXPIRES_AT_FIELD = "expiresAt"

# List answer.
PAGE_FIELD = "page"
PAGE_SIZE_FIELD = "pageSize"
TOTAL_COUNT_FIELD = "totalCount"
ORDERS_FIELD = "orders"

# Request bodies.
SELLER_ORDER_NUMBER_FIELD = "sellerOrderNumber"
SELLER_ORDER_NUMBER_MAX_LENGTH = 50
STATUS_FIELD = "status"
SHIP_DATE_FIELD = "shipDate"
CARRIER_FIELD = "carrier"
SHIPPING_METHOD_FIELD = "shippingMethod"
TRACKING_NUMBER_FIELD = "trackingNumber"

# Error bodies.
MESSAGE_FIELD = "message"
RETRY_AFTER_HEADER = "Retry-After"

# Order statuses and the transitions between them.
NEW = "NEW"
ACKNOWLEDGED = "ACKNOWLEDGED"
SHIPPED = "SHIPPED"
CANCELLED = "CANCELLED"
ORDER_STATUSES = (NEW, ACKNOWLEDGED, SHIPPED, CANCELLED)
UPDATE_STATUSES = (SHIPPED, CANCELLED)

# Order object fields the pipeline reads. Unknown extra fields are kept in the raw JSON.
ORDER_ID_FIELD = "id"
ORDER_FIELDS = (
    "id",
    "storeId",
    "marketplace",
    "marketplaceOrderId",
    "status",
    "orderDate",
    "importedAt",
    "modifiedAt",
    "acknowledgedAt",
    "sellerOrderNumber",
    "currency",
    "customer",
    "shippingAddress",
    "billingAddress",
    "shippingMethod",
    "paymentMethod",
    "subtotal",
    "shippingTotal",
    "taxTotal",
    "discountTotal",
    "orderTotal",
    "items",
    "shipment",
    "cancelledAt",
)
CUSTOMER_FIELDS = ("name", "email", "phone")
ADDRESS_FIELDS = (
    "name",
    "company",
    "address1",
    "address2",
    "city",
    "state",
    "postalCode",
    "country",
    "phone",
)
ITEM_FIELDS = (
    "itemId",
    "sku",
    "marketplaceItemId",
    "title",
    "quantity",
    "unitPrice",
    "taxAmount",
    "shippingAmount",
    "discountAmount",
)
SHIPMENT_FIELDS = ("carrier", "shippingMethod", "trackingNumber", "shipDate")
ORDER_MONEY_FIELDS = ("subtotal", "shippingTotal", "taxTotal", "discountTotal", "orderTotal")
ITEM_MONEY_FIELDS = ("unitPrice", "taxAmount", "shippingAmount", "discountAmount")

# Minor-unit digits per currency (ISO 4217) for the currencies marketplaces use; others: 2.
CURRENCY_MINOR_DIGITS = {"JPY": 0, "KRW": 0, "CLP": 0, "VND": 0, "KWD": 3, "BHD": 3, "OMR": 3}

# The rate limit GoDataFeed documents: a leaky bucket per consumer key.
RATE_LIMIT_BURST = 50
RATE_LIMIT_PER_SECOND = 2.0


def minor_digits(currency: str) -> int:
    """How many digits after the decimal point the currency's money may carry."""
    return CURRENCY_MINOR_DIGITS.get(currency.upper(), 2)


# Names the client reads or sends besides the ones above.
ITEMS_FIELD = "items"
MODIFIED_AT_FIELD = "modifiedAt"
AUTHORIZATION_HEADER = "Authorization"
BEARER_SCHEME = "Bearer"

# Names the emulator writes besides the ones above.
ORDER_DATE_FIELD = "orderDate"
IMPORTED_AT_FIELD = "importedAt"
ACKNOWLEDGED_AT_FIELD = "acknowledgedAt"
SHIPMENT_FIELD = "shipment"
CANCELLED_AT_FIELD = "cancelledAt"
