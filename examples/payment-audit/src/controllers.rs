//! The payment controller: pay, refund, and a receipt lookup on SUBSCRIBE.

use std::collections::HashMap;
use std::sync::Arc;

use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use stomp_runtime::advice::Tag;
use stomp_runtime::prelude::*;
use stomp_runtime::{message_mapping, send_to_user, subscribe_mapping};

use crate::gateway::{Gateway, GatewayError, Mode};

/// Marks the handlers the audit advice records.
pub const PAYMENT: Tag = Tag::new("payment");

/// What a client SENDs to `/app/payment.pay`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PayRequest {
    /// The shop's order.
    pub order_id: String,
    /// Amount in the currency's minor unit.
    pub amount_cents: u64,
    /// ISO 4217 code.
    pub currency: String,
    /// The card number.
    pub card: String,
}

/// What a client SENDs to `/app/payment.refund`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RefundRequest {
    /// The payment to refund.
    pub payment_id: String,
}

/// A payment's receipt, sent to the payer's `/user/queue/payments`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Receipt {
    /// This payment.
    pub payment_id: String,
    /// The shop's order.
    pub order_id: String,
    /// Amount in the minor unit.
    pub amount_cents: u64,
    /// ISO 4217 code.
    pub currency: String,
    /// Who paid.
    pub user: String,
    /// `paid` or `refunded`.
    pub status: String,
}

/// The payments state: the gateway and the receipts issued so far.
#[derive(Clone, Debug)]
pub struct Payments {
    gateway: Arc<Gateway>,
    receipts: Arc<Mutex<HashMap<String, Receipt>>>,
}

impl Payments {
    /// Payments through a gateway in `mode`.
    pub fn new(mode: Mode) -> Self {
        Self {
            gateway: Arc::new(Gateway::new(mode)),
            receipts: Arc::default(),
        }
    }

    /// The gateway, to switch its mode.
    pub fn gateway(&self) -> &Gateway {
        &self.gateway
    }
}

fn gateway_error(e: GatewayError) -> StompError {
    match e {
        // The client may know its card was declined, and the advice can match on the type.
        GatewayError::Declined(d) => StompError::with_source("card declined", d),
        // The endpoint and timings stay in the log and the audit trail.
        GatewayError::Unreachable(u) => StompError::internal(u),
    }
}

/// Charges a card; the receipt reaches every session of the payer.
#[message_mapping("/payment.pay", tags = [PAYMENT])]
#[send_to_user("/queue/payments")]
pub async fn pay(
    user: Principal,
    Payload(req): Payload<PayRequest>,
    State(payments): State<Payments>,
) -> Result<Receipt, StompError> {
    let transaction = payments
        .gateway
        .charge(&req.card, req.amount_cents)
        .map_err(gateway_error)?;
    let receipt = Receipt {
        payment_id: format!("pay-{}", transaction.trim_start_matches("tx-")),
        order_id: req.order_id,
        amount_cents: req.amount_cents,
        currency: req.currency,
        user: user.name().to_owned(),
        status: "paid".into(),
    };
    payments
        .receipts
        .lock()
        .insert(receipt.payment_id.clone(), receipt.clone());
    Ok(receipt)
}

/// Refunds one of the caller's own payments.
#[message_mapping("/payment.refund", tags = [PAYMENT])]
#[send_to_user("/queue/payments")]
pub async fn refund(
    user: Principal,
    Payload(req): Payload<RefundRequest>,
    State(payments): State<Payments>,
) -> Result<Receipt, StompError> {
    let mut receipt = owned_receipt(&payments, &user, &req.payment_id)?;
    if receipt.status == "refunded" {
        return Err(StompError::new("already refunded"));
    }
    payments
        .gateway
        .refund(&receipt.payment_id)
        .map_err(gateway_error)?;
    receipt.status = "refunded".into();
    payments
        .receipts
        .lock()
        .insert(receipt.payment_id.clone(), receipt.clone());
    Ok(receipt)
}

/// SUBSCRIBE to `/app/payment.receipt.{id}` answers once with the receipt.
#[subscribe_mapping("/payment.receipt.{payment_id}")]
pub async fn receipt(
    user: Principal,
    DestinationVar(payment_id): DestinationVar<String>,
    State(payments): State<Payments>,
) -> Result<Receipt, StompError> {
    owned_receipt(&payments, &user, &payment_id)
}

fn owned_receipt(payments: &Payments, user: &Principal, id: &str) -> Result<Receipt, StompError> {
    match payments.receipts.lock().get(id) {
        Some(r) if r.user == user.name() => Ok(r.clone()),
        // The same answer whether it exists or belongs to someone else.
        _ => Err(StompError::new(format!("no payment `{id}`"))),
    }
}
