"""The transaction schema shared by the generator, validation, features and serving.

One place names every column, its meaning and the category values the synthetic generator
uses. External data (CSV ingestion) may use other category values: vocabularies are fitted
on the training split, so nothing here restricts what a user's own data may contain.
"""

from __future__ import annotations

TRANSACTION_ID = "transaction_id"
USER_ID = "user_id"  # the card
MERCHANT_ID = "merchant_id"  # the merchant or terminal
TIMESTAMP = "timestamp"
AMOUNT = "amount"
LABEL = "is_fraud"
#: Optional generator-only column naming the injected fraud pattern ("" for legitimate rows).
FRAUD_PATTERN = "fraud_pattern"

CATEGORICAL_COLUMNS: tuple[str, ...] = (
    "merchant_category",
    "transaction_type",
    "device_type",
    "location",
)
DEVICE_ID = "device_id"
HOUR = "hour_of_day"
DAY = "day_of_week"  # Monday = 0 ... Sunday = 6, as pandas' Timestamp.dayofweek

#: Columns every transactions table must have (most card data has these and little else).
REQUIRED_COLUMNS: tuple[str, ...] = ("transaction_id", "user_id", TIMESTAMP, AMOUNT, LABEL)
#: Columns the features use when a table has them (the feature set follows what is there).
FEATURE_INPUTS: tuple[str, ...] = (*CATEGORICAL_COLUMNS, DEVICE_ID, MERCHANT_ID)
#: Id columns that may carry point-in-time history (``features.entities``).
ENTITY_COLUMNS: tuple[str, ...] = (USER_ID, MERCHANT_ID, DEVICE_ID)
#: Every column a generated table has, in order (hour/day are derived from the timestamp).
CORE_COLUMNS: tuple[str, ...] = (
    "transaction_id",
    "user_id",
    MERCHANT_ID,
    TIMESTAMP,
    AMOUNT,
    "merchant_category",
    "transaction_type",
    DEVICE_ID,
    "device_type",
    "location",
    LABEL,
)
#: Every column name a file may be mapped onto (``data.columns``).
CANONICAL_COLUMNS: tuple[str, ...] = CORE_COLUMNS
#: Full column order of a generated / processed transactions table.
COLUMNS: tuple[str, ...] = (*CORE_COLUMNS[:-1], HOUR, DAY, LABEL)

MERCHANT_CATEGORIES: tuple[str, ...] = (
    "grocery",
    "restaurant",
    "gas_station",
    "retail",
    "online_retail",
    "travel",
    "entertainment",
    "utilities",
    "healthcare",
    "electronics",
    "jewelry",
    "gift_cards",
    "gambling",
    "crypto",
    "money_transfer",
)
HIGH_RISK_MERCHANT_CATEGORIES: tuple[str, ...] = (
    "electronics",
    "jewelry",
    "gift_cards",
    "gambling",
    "crypto",
    "money_transfer",
)
TRANSACTION_TYPES: tuple[str, ...] = ("purchase", "online", "withdrawal", "transfer")
DEVICE_TYPES: tuple[str, ...] = ("mobile", "desktop", "tablet", "pos")
LOCATIONS: tuple[str, ...] = (
    "New York",
    "Los Angeles",
    "Chicago",
    "Houston",
    "Phoenix",
    "Philadelphia",
    "San Antonio",
    "San Diego",
    "Dallas",
    "Austin",
    "Seattle",
    "Denver",
    "Boston",
    "Miami",
    "Atlanta",
    "Portland",
    "Las Vegas",
    "Detroit",
    "Minneapolis",
    "Nashville",
    "London",
    "Paris",
    "Berlin",
    "Madrid",
    "Toronto",
    "Mexico City",
    "Sao Paulo",
    "Lagos",
    "Mumbai",
    "Singapore",
)
