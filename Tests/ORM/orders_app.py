"""An application as ORMs write them (issue 13): SQLAlchemy models whose ids the database
generates, objects created through a session, children linked to the parent's new id.
DataJoinTests/ORMTests.swift drives it against SQLite, PostgreSQL and MariaDB nodes.

    python orders_app.py URL create            create the tables (SQLAlchemy's DDL)
    python orders_app.py URL add NAME N        N customers with two orders each
    python orders_app.py URL ship              mark every order shipped (updates only)
    python orders_app.py URL list              every customer and its orders, as JSON
"""
import json
import sys

from sqlalchemy import ForeignKey, String, create_engine, select
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, relationship


class Base(DeclarativeBase):
    pass


class Customer(Base):
    __tablename__ = "customer"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    orders: Mapped[list["Order"]] = relationship(back_populates="customer", order_by="Order.item")


class Order(Base):
    __tablename__ = "purchase"
    id: Mapped[int] = mapped_column(primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customer.id"))
    item: Mapped[str] = mapped_column(String(100))
    status: Mapped[str] = mapped_column(String(20), default="new")
    customer: Mapped[Customer] = relationship(back_populates="orders")


def main(url, command, *args):
    engine = create_engine(url)
    if command == "create":
        Base.metadata.create_all(engine)
    elif command == "add":
        name, n = args[0], int(args[1])
        with Session(engine) as session:
            for i in range(n):
                c = Customer(name=f"{name} customer {i}")
                c.orders = [Order(item=f"{name} item {i}a"), Order(item=f"{name} item {i}b")]
                session.add(c)
                # One commit per customer, as a form handler would: the ids come back from
                # the database and the children are written with their parent's.
                session.commit()
                assert c.id is not None and all(o.customer_id == c.id for o in c.orders)
    elif command == "ship":
        with Session(engine) as session:
            for o in session.scalars(select(Order)):
                o.status = "shipped"
            session.commit()
    elif command == "list":
        with Session(engine) as session:
            out = [
                {"id": c.id, "name": c.name, "orders": [[o.id, o.item, o.status] for o in c.orders]}
                for c in session.scalars(select(Customer).order_by(Customer.id))
            ]
        print(json.dumps(out))
    else:
        raise SystemExit(f"unknown command {command}")


if __name__ == "__main__":
    main(*sys.argv[1:])
