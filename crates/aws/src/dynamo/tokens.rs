//! `Tokens`: API tokens, stored under the SHA-256 of the token, listed per owner.

use intake_core::ports::{StoreError, Tokens};
use intake_core::{Owner, TokenHash, TokenId, TokenRecord};

use super::keys::{Key, Owned};
use super::{DynamoCatalog, owned_item, s};
use crate::error::store_error;
use crate::schema::{PK, SK};

impl Tokens for DynamoCatalog {
    async fn put_token(&self, token: &TokenRecord) -> Result<(), StoreError> {
        let item = owned_item(
            token,
            &Key::token(&token.hash),
            Owned::Token,
            &token.owner,
            token.id.to_string(),
        )?;
        self.put_unconditionally(item).await
    }

    async fn find_token(&self, hash: &TokenHash) -> Result<Option<TokenRecord>, StoreError> {
        self.get_item(&Key::token(hash)).await
    }

    async fn list_tokens(&self, owner: &Owner) -> Result<Vec<TokenRecord>, StoreError> {
        self.query_owned(owner, Owned::Token).await
    }

    async fn delete_token(&self, owner: &Owner, id: &TokenId) -> Result<bool, StoreError> {
        let Some(token) = self.list_tokens(owner).await?.into_iter().find(|t| &t.id == id) else {
            return Ok(false);
        };
        let key = Key::token(&token.hash);
        self.client()
            .delete_item()
            .table_name(self.table())
            .key(PK, s(&key.pk))
            .key(SK, s(&key.sk))
            .send()
            .await
            .map_err(store_error)?;
        Ok(true)
    }
}
