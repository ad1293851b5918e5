"""Log categories (values as ten_ai_base names them)."""

LOG_CATEGORY_KEY_POINT = "key_point"
LOG_CATEGORY_VENDOR = "vendor"
