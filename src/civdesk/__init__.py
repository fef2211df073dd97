"""civdesk: a desktop library and download manager for Civitai models."""

__version__ = "0.1.0"
APP_NAME = "civdesk"
