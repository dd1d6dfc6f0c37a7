"""Records as the Python values asn1tools uses, derived from the records' schema kinds."""

from rais.wire.schema import HostId, ListOf, Struct, asn1_name


def value_of(kind, value):
    if isinstance(kind, HostId):
        return value.value
    if isinstance(kind, Struct):
        return record_dict(value)
    if isinstance(kind, ListOf):
        return [value_of(kind.item, v) for v in value]
    return value


def record_dict(record):
    out = {}
    for name, kind, _optional in record.__wire_components__:
        value = getattr(record, name)
        if value is not None:
            out[asn1_name(name)] = value_of(kind, value)
    return out


def choice_value(choice, record):
    for name, (_tag, cls) in choice.alternatives.items():
        if type(record) is cls:
            return (name, record_dict(record))
    raise TypeError(record)
