"""The resident portal (マイナポータル style): server-rendered pages, mobile first, Japanese by default."""
