"""The hub's HTTP routes, one APIRouter per concern; handlers only translate HTTP to the hub's parts and back."""
