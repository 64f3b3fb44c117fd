"""Which customers a fleet run covers: the ones it is given, or every sub-folder of a prefix.

s3://bucket/customers/          (or a local directory laid out the same way)
├── acme/intents.csv ...        -> customer "acme", data s3://bucket/customers/acme
└── globex/replies.jsonl ...    -> customer "globex"
"""

from __future__ import annotations

from prefect import task
from prefect.cache_policies import NO_CACHE
from pydantic import BaseModel

from mme_factory.errors import MmeFactoryError
from mme_factory.settings import Settings
from mme_factory.store import open_store


class FleetError(MmeFactoryError):
    """A fleet run cannot tell which customers to onboard, or one of them failed."""


class FleetCustomer(BaseModel):
    """One customer of a fleet run and where its data files are (a folder or S3 prefix)."""

    customer_id: str
    data_uri: str


def customers_under(prefix: str, settings: Settings) -> list[FleetCustomer]:
    """One customer per sub-folder of `prefix` holding at least one file, by folder name."""
    store = open_store(prefix, settings)
    folders = sorted({key.split("/", 1)[0] for key in store.list_keys() if "/" in key})
    if not folders:
        raise FleetError(
            f"no customer folders under {store.uri()}: put each customer's data files in "
            f"{store.uri('<customer-id>')}/, or give the customers as a list"
        )
    return [FleetCustomer(customer_id=name, data_uri=store.uri(name)) for name in folders]


def fleet_customers(
    customers: list[FleetCustomer] | None, data_prefix: str | None, settings: Settings
) -> list[FleetCustomer]:
    """The customers given, else those under `data_prefix`, else under the settings' prefix."""
    if customers and data_prefix:
        raise FleetError("give either customers or data_prefix, not both")
    if customers:
        ids = [customer.customer_id for customer in customers]
        repeated = sorted({customer for customer in ids if ids.count(customer) > 1})
        if repeated:
            raise FleetError(f"customers listed more than once: {', '.join(repeated)}")
        return list(customers)
    prefix = data_prefix or settings.fleet.data_prefix
    if not prefix:
        raise FleetError(
            "no customers to onboard: give customers, data_prefix, or set fleet.data_prefix "
            "(MME_FACTORY_FLEET__DATA_PREFIX) to the prefix whose sub-folders are customers"
        )
    return customers_under(prefix, settings)


@task(name="fleet-customers", cache_policy=NO_CACHE)
def fleet_customers_task(
    customers: list[FleetCustomer] | None, data_prefix: str | None, settings: Settings
) -> list[FleetCustomer]:
    """List the fleet's customers and where each one's data is."""
    found = fleet_customers(customers, data_prefix, settings)
    print(f"{len(found)} customers: {', '.join(c.customer_id for c in found)}")
    return found
