"""The four documents the box faxes, built from the insurance book.

Each builder reads what it needs through the store's read connection and returns a
:class:`~appliance.fax.render.Document` in Chinese with English alongside: a policy summary
(holder and insured shown only by their masked names and ID numbers), a product's premium
for the caller's parameters with the rates of their age band, a claim form (pre-filled with
the policy and case number when known) and the claim and service procedures with the
product's clauses. :func:`build` picks one by name, which is what the fax log stores so a
fax can be sent again.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any, Final

from appliance.fax.render import Blank, Document, FaxDocumentError, Heading, Paragraph, Row
from appliance.insurance.quote import from_fen, load_rate_table
from appliance.store.db import Store

STATUS: Final = {"in_force": "有效 In force", "lapsed": "失效 Lapsed",
                 "surrendered": "已退保 Surrendered", "pending": "待生效 Pending"}
MODES: Final = {"annual": "年缴 Annual", "monthly": "月缴 Monthly", "single": "趸缴 Single"}
SEXES: Final = {"M": "男 Male", "F": "女 Female"}
SERVICE_LINE: Final = "95500"


def yuan(amount: Decimal) -> str:
    return f"¥{amount:,.2f} 元"


def _mask_name(name: str) -> str:
    # A fax can land on a shared machine: show the surname only, as bank statements do.
    return name[:1] + "*" * (len(name) - 1)


_POLICY_SQL: Final = """
    SELECT p.*, pr.name_zh, pr.name_en, h.name AS holder_name, h.id_masked AS holder_id,
           i.name AS insured_name, i.id_masked AS insured_id, s.name AS sales_name,
           s.phone AS sales_phone
    FROM policies p
    JOIN products pr ON pr.code = p.product_code
    JOIN customers h ON h.id = p.holder_id
    JOIN customers i ON i.id = p.insured_id
    LEFT JOIN salespeople s ON s.code = p.salesperson_code
    WHERE p.number = ?
"""


def policy_summary(store: Store, number: str) -> Document:
    rows = store.query(_POLICY_SQL, [number])
    if not rows:
        raise FaxDocumentError(f"policy number {number!r} is not a known policy")
    p = rows[0]
    doc = Document("policy_summary", "保单摘要  Policy summary")
    doc.blocks += [
        Heading("保单信息 Policy"),
        Row("保单号 Policy no.", p["number"]),
        Row("产品 Product", f"{p['name_zh']}  {p['name_en']} ({p['product_code']})"),
        Row("状态 Status", STATUS.get(p["status"], p["status"])),
        Row("生效日 Issued", p["issued_on"]),
        Row("保险期间 Term", f"{p['term']} 年 years" if p["term"] else "—"),
        Row("基本保额 Sum insured", yuan(from_fen(p["sum_insured_fen"]))),
        Row("保费 Premium", f"{yuan(from_fen(p['premium_fen']))}  "
                           f"{MODES.get(p['payment_mode'], p['payment_mode'])}"),
        Row("下次缴费 Next due",
            f"{p['next_due_date']}  {yuan(from_fen(p['next_due_fen']))}"
            if p["next_due_date"] and p["next_due_fen"] is not None else "—"),
        Heading("投保人与被保险人 Holder and insured"),
        Row("投保人 Holder", f"{_mask_name(p['holder_name'])}  {p['holder_id']}"),
        Row("被保险人 Insured", f"{_mask_name(p['insured_name'])}  {p['insured_id']}"),
        Heading("服务人员 Your salesperson"),
        Row("姓名 Name", p["sales_name"] or "—"),
        Row("电话 Phone", p["sales_phone"] or SERVICE_LINE),
        Paragraph(""),
        Paragraph("本摘要仅供参考，以保险合同为准。This summary is for reference; the policy "
                  "contract prevails. 客服热线 Service line: " + SERVICE_LINE),
    ]
    return doc


def rates(store: Store, product_code: str, sum_insured: Decimal | int | str, *,
          age: int | None = None, sex: str | None = None, term: int | None = None,
          payment_mode: str | None = None, seats: int | None = None) -> Document:
    """The premium for the caller's parameters, then the rates of their band by term and
    payment mode. ValueError (from the quote) names a parameter the table cannot take."""
    table = load_rate_table(store, product_code)
    q = table.quote(sum_insured, age=age, sex=sex, term=term, payment_mode=payment_mode,
                    seats=seats)
    p = table.product
    doc = Document("rates", "保费报价  Premium quotation")
    doc.blocks += [
        Heading(f"{p.name_zh}  {p.name_en} ({p.code})"),
        Row("基本保额 Sum insured", yuan(q.sum_insured)),
    ]
    for label, value in (("年龄 Age", age), ("性别 Sex", SEXES.get(sex or "", sex)),
                         ("保险期间 Term", f"{term} 年 years" if term else None),
                         ("缴费方式 Payment", MODES.get(payment_mode or "", payment_mode)),
                         ("座位数 Seats", seats)):
        if value is not None:
            doc.blocks.append(Row(label, str(value)))
    doc.blocks += [
        Row("费率 Rate", f"{q.rate_per_1000} ‰ (每千元保额 per 1,000 yuan)"),
        Row("每期保费 Premium", yuan(q.premium)),
        Heading("同档费率 Rates for the same band (每千元保额 per 1,000 yuan)"),
    ]
    for r in table.rows:
        if r.age_min is not None and age is not None and not (
                r.age_min <= age <= (r.age_max or age)):
            continue
        if r.sex is not None and r.sex != sex:
            continue
        if r.seats_min is not None and seats is not None and not (
                r.seats_min <= seats <= (r.seats_max or seats)):
            continue
        band = []
        if r.age_min is not None:
            band.append(f"{r.age_min}–{r.age_max} 岁")
        if r.value_min is not None:
            band.append(f"车价 {r.value_min:,.0f}–{r.value_max or 0:,.0f}")
        if r.term is not None:
            band.append(f"{r.term} 年")
        mode = MODES.get(r.payment_mode or "", "")
        extra = f" + {yuan(r.base)}" if r.base else ""
        doc.blocks.append(Row(" ".join(band), f"{mode}  {r.rate_per_1000}{extra}"))
    doc.blocks += [
        Paragraph(""),
        Paragraph("保费 = 基本保额 ÷ 1000 × 费率（机动车另加基础保费）。报价以核保结果为准。"
                  "Premium = sum insured / 1000 × rate (motor adds a base premium). Subject to "
                  "underwriting."),
    ]
    return doc


def claim_form(store: Store, policy_number: str | None = None,
               case_number: str | None = None) -> Document:
    doc = Document("claim_form", "理赔申请书  Claim form")
    product = ""
    if policy_number:
        rows = store.query("SELECT pr.name_zh, pr.name_en FROM policies p JOIN products pr "
                           "ON pr.code = p.product_code WHERE p.number = ?", [policy_number])
        if not rows:
            raise FaxDocumentError(f"policy number {policy_number!r} is not a known policy")
        product = f"{rows[0]['name_zh']}  {rows[0]['name_en']}"
    doc.blocks += [
        Heading("保单 Policy"),
        Row("保单号 Policy no.", policy_number or "") if policy_number
        else Blank("保单号 Policy no."),
        Row("产品 Product", product) if product else Blank("产品 Product"),
        Row("报案号 Case no.", case_number) if case_number else Blank("报案号 Case no."),
        Heading("申请人 Claimant"),
        Blank("姓名 Name"),
        Blank("身份证号 ID number"),
        Blank("与被保险人关系 Relation to the insured"),
        Blank("联系电话 Phone"),
        Blank("通讯地址 Address"),
        Heading("出险经过 What happened"),
        Blank("出险日期 Date"),
        Blank("出险地点 Place"),
        Blank("经过 Description"),
        Blank(""),
        Blank(""),
        Heading("领款账户 Bank account for payment"),
        Blank("开户行 Bank"),
        Blank("户名 Account name"),
        Blank("账号 Account no."),
        Paragraph(""),
        Paragraph("本人声明以上内容属实。I declare the above is true."),
        Blank("申请人签名 Signature"),
        Blank("日期 Date"),
    ]
    return doc


_CLAIM_STEPS: Final = (
    "报案：出险后10日内拨打客服热线或通过本机语音报案，记下报案号。Report within 10 days "
    "by calling the service line; keep the case number.",
    "填表：填写理赔申请书并签名。Fill in and sign the claim form.",
    "备齐材料：保单、身份证复印件、银行卡复印件、医疗发票或事故证明、诊断证明。Gather the "
    "policy, copies of ID and bank card, medical receipts or accident report, diagnosis.",
    "提交：交营业部柜面、服务人员，或传真至本公司理赔传真。Hand in at a branch, to your "
    "salesperson, or fax to our claims fax.",
    "审核：材料齐全后10个工作日内作出核定，并通知结果。We decide within 10 working days "
    "of receiving complete documents and tell you the result.",
    "给付：达成协议后10日内支付至您的银行账户。Payment reaches your account within 10 days "
    "of agreement.",
)


def procedures(store: Store, product_code: str | None = None) -> Document:
    doc = Document("procedures", "理赔与服务流程  Claim and service procedures")
    doc.blocks.append(Heading("理赔流程 How to claim"))
    doc.blocks += [Paragraph(f"{i}. {step}") for i, step in enumerate(_CLAIM_STEPS, start=1)]
    doc.blocks += [
        Heading("保全服务 Policy services"),
        Paragraph("变更联系方式、受益人或缴费账户，请携带身份证到营业部办理，或致电 "
                  f"{SERVICE_LINE}。To change contact details, beneficiary or payment account, "
                  f"bring your ID to a branch or call {SERVICE_LINE}."),
    ]
    if product_code:
        rows = store.query("SELECT * FROM products WHERE code = ?", [product_code])
        if not rows:
            raise FaxDocumentError(f"product code {product_code!r} is not a known product")
        p = rows[0]
        doc.blocks += [Heading(f"条款摘要 Clauses: {p['name_zh']} {p['name_en']}"),
                       Paragraph(p["clauses_zh"]), Paragraph(p["clauses_en"])]
    return doc


def _optional_int(value: Any) -> int | None:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and value.isdigit():
        return int(value)
    if value in (None, ""):
        return None
    raise ValueError(f"expected a whole number, got {value!r}")


def build(store: Store, kind: str, params: dict[str, Any]) -> Document:
    """The document ``kind`` with its parameters (as the fax log stores them)."""
    if kind == "policy_summary":
        return policy_summary(store, params["number"])
    if kind == "rates":
        # From an IVR every value is keyed text, "" for a parameter the product ignores.
        ints = {k: _optional_int(params.get(k)) for k in ("age", "term", "seats")}
        return rates(store, params["product_code"], params["sum_insured"], **ints,
                     sex=params.get("sex") or None,
                     payment_mode=params.get("payment_mode") or None)
    if kind == "claim_form":
        return claim_form(store, params.get("policy_number"), params.get("case_number"))
    if kind == "procedures":
        return procedures(store, params.get("product_code"))
    raise FaxDocumentError(f"document kind {kind!r} is not one of policy_summary, rates, "
                           "claim_form, procedures")
