"""A seti store says which order labels have no `seti` value (sent by name, and ignored by real scripts)."""

from __future__ import annotations

from statusctl.democart import DemoCart
from statusctl.domain.labels import BUILTIN_LABELS

from .helpers import cli, cli_json

ORDER_LABELS = [name for name, scope in BUILTIN_LABELS if scope == "order"]


def add_seti(name: str = "legacy", url: str = "https://shop.example/seti.php") -> str:
    return cli("stores", "add", name, "--cart", "seti", "--url", url, "--secret", "user=u",
               "--secret", "password=p", "--option", "code=MAIN").stdout


def test_stores_add_and_show_list_the_unmapped_order_labels():
    out = " ".join(add_seti().split())
    assert "sent by their own name: " + ", ".join(ORDER_LABELS) + "." in out
    assert "answers OK and changes nothing" in out
    assert "Item Shipped" not in out  # item labels are not order labels
    shown = cli_json("stores", "show", "legacy")
    assert shown["label_note"].startswith("order labels without --map seti=…, sent by their own name: "
                                          + ", ".join(ORDER_LABELS) + ".")
    text = " ".join(cli("stores", "show", "legacy").stdout.split())
    assert "Order Received, Payment Received" in text and "changes nothing" in text
    assert cli_json("stores", "list")[0]["label_note"] == shown["label_note"]


def test_mapping_a_label_takes_it_off_the_list_and_all_mapped_says_nothing():
    add_seti()
    cli("labels", "add", "Order Shipped", "--scope", "order", "--map", "seti=Shipped")
    cli("labels", "add", "Gift Wrapped", "--scope", "both")  # a user label that may go on orders
    note = cli_json("stores", "show", "legacy")["label_note"].split(". ")[0]
    assert "Order Shipped" not in note and "Gift Wrapped" in note and "Cancelled" in note
    for label in [*ORDER_LABELS, "Gift Wrapped"]:
        scope = "both" if label == "Gift Wrapped" else "order"
        cli("labels", "add", label, "--scope", scope, "--map", f"seti={label.split()[0]}")
    assert cli_json("stores", "show", "legacy")["label_note"] is None
    out = add_seti("second")
    assert "sent by their own name" not in out


def test_other_carts_have_no_such_note():
    cli("stores", "add", "oc", "--cart", "opencart", "--url", "https://oc.example", "--secret", "username=a",
        "--secret", "key=b")
    assert cli_json("stores", "show", "oc")["label_note"] is None


def test_setup_says_it_in_the_summary_and_when_saved():
    with DemoCart(user="seti-user", password="pw-0123456789") as cart:
        out = cli("setup", "--name", "shop", "--cart", "seti", "--url", cart.url, "--secret", "user=seti-user",
                  "--secret", "password=pw-0123456789", "--no-test", "--default-events", "--yes",
                  env={"COLUMNS": "400"}).stdout
    flat = " ".join(out.replace("│", " ").split())
    assert flat.count("sent by their own name: " + ", ".join(ORDER_LABELS)) == 2  # summary, and after saving
